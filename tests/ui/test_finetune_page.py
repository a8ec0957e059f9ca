"""AppTest of the Fine-tune page: it runs without exception, a change of method or GPU changes the numbers
the page shows, and a configuration that does not fit shows the shortfall (never a traceback)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "ui/finetune_page.py"
TIMEOUT_S = 60


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.run()
    assert not at.exception, at.exception
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _set(at: AppTest, key: str, value) -> AppTest:
    at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def test_page_runs_and_shows_the_estimate() -> None:
    at = _open()
    assert [t.value for t in at.title] == ["Fine-tune"]
    metrics = _metrics(at)
    for label in ("Memory per GPU (GB)", "GPU-hours", "Wall clock (hours)", "MFU (fitted)"):
        assert label in metrics, metrics
    assert at.success and "fits" in at.success[0].value  # LoRA of Llama 3.1 8B on one H100 (default)
    assert not at.error, [e.value for e in at.error]
    assert at.dataframe, "no cost table"


def test_method_and_gpu_change_the_numbers() -> None:
    at = _open()
    lora = _metrics(at)
    qlora = _metrics(_set(at, "ft_method", "qlora"))
    # NF4 base (4.127 bits) against bf16 (16 bits): less memory; dequantisation adds FLOPs
    assert float(qlora["Memory per GPU (GB)"]) < float(lora["Memory per GPU (GB)"])
    assert qlora["GPU-hours"] != lora["GPU-hours"]
    on_a100 = _metrics(_set(at, "ft_gpu", "A100-80GB"))
    # lower dense bf16 peak than the H100 and another fitted MFU class: another GPU-hour figure
    assert on_a100["GPU-hours"] != qlora["GPU-hours"]


def test_does_not_fit_shows_the_shortfall() -> None:
    at = _open()
    _set(at, "ft_method", "full")  # full AdamW of an 8B on one 80 GB GPU: >= 16 bytes x 8.03B = 128 GB
    assert not at.success
    assert at.error, "no error shown for a configuration that does not fit"
    text = at.error[0].value
    assert "does not fit" in text and "GB short" in text
    assert "Configurations that would fit" in text
    gb = float(_metrics(at)["Memory per GPU (GB)"].replace(",", ""))
    assert gb > 128
