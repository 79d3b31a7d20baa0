"""Speech-input settings: defaults, TOML and OPENCIC_* variables, and clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opencic.assistant.speech_input import SpeechInput
from opencic.config import ConfigError, Settings, load_settings
from opencic.speech.asr import BUNDLED_WHISPER_SHA256, WhisperRecognizer, default_whisper_path


def test_defaults_follow_the_contract() -> None:
    s = Settings()
    assert s.partial_results is False  # B-SR-03: off unless arranged
    assert (s.vad_silence_ms, s.no_speech_timeout_seconds, s.max_audio_seconds) == (600, 5, 30)
    assert s.keep_recording_seconds == 4.0 and s.partial_results_interval_ms == 1000
    assert s.asr_model_path is None  # the bundled tiny.en
    assert s.speculative_decode is True and s.early_endpoint_ms == 300


def test_speech_settings_from_toml_and_environment(tmp_path: Path) -> None:
    (tmp_path / "opencic.toml").write_text(
        "partial_results = true\nvad_silence_ms = 800\nno_speech_timeout_seconds = 7.5\n"
        "keep_recording_seconds = 0\n"
    )
    s = load_settings(env={"OPENCIC_PARTIAL_RESULTS_INTERVAL_MS": "1500"},
                      overrides={"data_dir": tmp_path})
    assert s.partial_results is True
    assert (s.vad_silence_ms, s.no_speech_timeout_seconds) == (800, 7.5)
    assert (s.keep_recording_seconds, s.partial_results_interval_ms) == (0, 1500)
    off = load_settings(env={"OPENCIC_PARTIAL_RESULTS": "off"}, overrides={"data_dir": tmp_path})
    assert off.partial_results is False  # the environment wins over the file
    assert load_settings(env=s.to_env()) == s  # and the trip to worker processes


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENCIC_VAD_SILENCE_MS": "50"},
         r"setting 'vad_silence_ms': 50 is outside 100\.\.5000 ms"),
        ({"OPENCIC_VAD_SILENCE_MS": "soon"}, r"setting 'vad_silence_ms': cannot use value 'soon'"),
        ({"OPENCIC_NO_SPEECH_TIMEOUT_SECONDS": "0"},
         (r"setting 'no_speech_timeout_seconds': 0 must be above 0 and at most "
         r"max_audio_seconds \(30\)")),
        ({"OPENCIC_NO_SPEECH_TIMEOUT_SECONDS": "12", "OPENCIC_MAX_AUDIO_SECONDS": "10"},
         r"'no_speech_timeout_seconds': 12 must be .* at most max_audio_seconds \(10\)"),
        ({"OPENCIC_MAX_AUDIO_SECONDS": "-1"}, r"'max_audio_seconds' must be positive"),
        ({"OPENCIC_PARTIAL_RESULTS": "sometimes"}, r"setting 'partial_results'"),
        ({"OPENCIC_PARTIAL_RESULTS_INTERVAL_MS": "100"},
         r"'partial_results_interval_ms': 100 is below 200"),
        ({"OPENCIC_EARLY_ENDPOINT_MS": "100"},
         (r"'early_endpoint_ms': 100 must be 0 \(off\) or between 200 .* and "
          r"vad_silence_ms \(600\)")),
        ({"OPENCIC_EARLY_ENDPOINT_MS": "700"}, r"'early_endpoint_ms': 700 must be 0"),
        ({"OPENCIC_KEEP_RECORDING_SECONDS": "0.5"},
         (r"'keep_recording_seconds': 0\.5 must be 0 \(never\) or between 1 and "
         r"max_audio_seconds \(30\)")),
    ],
)
def test_bad_speech_settings_say_which_and_why(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env={**env, "OPENCIC_DATA_DIR": str(tmp_path)})


def _own_model(tmp_path: Path, skip: str | None = None) -> Path:
    own = tmp_path / "my-whisper"
    own.mkdir()
    for source in default_whisper_path().iterdir():
        if source.is_file() and source.name != skip:
            (own / source.name).symlink_to(source)
    return own


def test_asr_model_path_problems_are_named_at_start_up(tmp_path: Path) -> None:
    def check(path: Path) -> str:
        with pytest.raises(ConfigError) as info:
            load_settings(env={"OPENCIC_ASR_MODEL_PATH": str(path)},
                          overrides={"data_dir": tmp_path})
        return str(info.value)

    assert check(tmp_path / "nowhere") == (
        f"setting 'asr_model_path': {tmp_path / 'nowhere'} does not exist"
    )
    (tmp_path / "model.bin").write_bytes(b"")
    assert "is not a directory (expected a CTranslate2 Whisper model directory" in check(
        tmp_path / "model.bin"
    )
    lacking = check(_own_model(tmp_path, skip="tokenizer.json"))
    assert lacking.startswith("setting 'asr_model_path': ") and "lacks tokenizer.json" in lacking


def test_asr_model_path_reaches_the_recognizer(tmp_path: Path) -> None:
    own = _own_model(tmp_path)
    s = load_settings(env={"OPENCIC_ASR_MODEL_PATH": str(own), "OPENCIC_VAD_SILENCE_MS": "700",
                           "OPENCIC_PARTIAL_RESULTS": "true"},
                      overrides={"data_dir": tmp_path})
    engines = SpeechInput.from_settings(s)
    try:
        assert isinstance(engines.recognizer, WhisperRecognizer)
        # A user's own model: no pinned hashes (they are for the bundled files only).
        assert engines.recognizer.model_path == own
        assert engines.recognizer.expected_sha256 is None
        assert engines.silence_ms == 700 and engines.partial_results is True
        assert engines.no_speech_timeout_ms == 5000 and engines.keep_recording_ms == 4000
    finally:
        engines.close()
    bundled = SpeechInput.from_settings(Settings())
    try:
        assert isinstance(bundled.recognizer, WhisperRecognizer)
        assert bundled.recognizer.expected_sha256 == BUNDLED_WHISPER_SHA256  # checked at load
    finally:
        bundled.close()


def test_serve_refuses_a_bad_speech_setting(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "opencic.cli.main", "serve", "--h2c", "--port", "0",
         "--data-dir", str(tmp_path)],
        env={"OPENCIC_VAD_SILENCE_MS": "20000", "PATH": "/usr/bin:/bin",
             "PYTHONPATH": ":".join(sys.path)},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert "opencic: setting 'vad_silence_ms': 20000 is outside 100..5000 ms" in proc.stderr


def test_readme_documents_the_speech_settings() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in ("asr_model_path", "vad_silence_ms", "no_speech_timeout_seconds",
                 "max_audio_seconds", "partial_results", "partial_results_interval_ms",
                 "keep_recording_seconds", "speculative_decode", "early_endpoint_ms"):
        assert f"`{name}`" in readme, name
