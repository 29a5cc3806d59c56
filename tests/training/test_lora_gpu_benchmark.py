"""The GPU LoRA benchmark's code, run on a CPU with a tiny model: its chunked loss is the model's own
loss with the same gradients, every variant trains only the adapter, and its FLOPs arithmetic holds."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from benchmarks.lora_gpu_benchmark import (
    VARIANTS,
    base_parameter_count,
    benchmark,
    build_lora_model,
    causal_lm_loss,
    chunked_causal_lm_loss,
    main,
)

pytestmark = pytest.mark.slow


def _lora_grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad and p.grad is not None}


def test_chunked_loss_equals_the_models_loss_and_gradients() -> None:
    torch.manual_seed(0)
    model = build_lora_model("tiny", device="cpu", dtype=torch.float32)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # B starts at zero; make the adapter's path carry gradient to A as well
            torch.nn.init.normal_(parameter, std=0.02)
    input_ids = torch.randint(0, 256, (3, 17))

    reference = causal_lm_loss(model, input_ids, None)
    reference.backward()
    expected = _lora_grads(model)
    model.zero_grad(set_to_none=True)
    chunked = chunked_causal_lm_loss(model, input_ids, None, chunk_tokens=7)  # 48 targets: 7 slices, the last short
    chunked.backward()
    got = _lora_grads(model)

    assert chunked.item() == pytest.approx(reference.item(), rel=1e-5)
    assert expected.keys() == got.keys() and len(got) == 2 * 7 * 2  # A and B of 7 linear layers x 2 layers
    for name, gradient in expected.items():
        torch.testing.assert_close(got[name], gradient, rtol=1e-4, atol=1e-6)


def test_every_variant_trains_only_the_adapter_and_reports_its_flops() -> None:
    variants = [replace(v, compiled=False) for v in VARIANTS]  # inductor's CPU compile is too slow for the suite
    report = benchmark(["tiny"], variants, device="cpu", dtype=torch.float32, seq_len=16, steps=2, warmup=1,
                       peak_tflops=1.0, no_ckpt_batch_scale=2.0)
    rows = report["models"]["tiny"]
    assert [row["variant"] for row in rows] == [v.name for v in variants]
    model = build_lora_model("tiny", device="cpu", dtype=torch.float32)
    n = base_parameter_count(model)
    # rank 16 on q, k, v, o, gate, up, down of 2 layers: 16 x (in + out) each
    per_layer = 16 * ((64 + 64) + (64 + 32) * 2 + (64 + 64) + (64 + 128) * 3)
    for row in rows:
        assert row["params"] == n == sum(p.numel() for p in model.get_base_model().parameters()) - 2 * per_layer
        assert row["trainable_params"] == 2 * per_layer
        assert row["tokens_per_s"] > 0 and torch.isfinite(torch.tensor(row["last_loss"]))
        assert row["model_tflops"] == pytest.approx(row["tokens_per_s"] * 4 * n / 1e12)
        recompute = 6 if row["variant_settings"]["checkpointing"] else 4
        assert row["hfu"] == pytest.approx(row["tokens_per_s"] * recompute * n / 1e12)
    assert rows[0]["speedup"] == 1.0
    assert rows[-1]["variant"] == "no-ckpt" and rows[-1]["batch"] == 4  # 2 x the reference batch of 2


def test_cli_refuses_a_bad_step_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--models", "tiny", "--device", "cpu", "--steps", "0"])
    assert exit_info.value.code == 2
    assert "--steps must be >= 1" in capsys.readouterr().err
