"""LoRA training throughput on one GPU: tokens/s and model FLOPs utilisation (MFU) of Llama-architecture
models built from their config (random weights: nothing can be downloaded on the GPU machine, and
throughput does not depend on the values), rank 16 on all linear layers, bf16, sequence 2048.

    python benchmarks/lora_gpu_benchmark.py --models 1b 7b [--steps 10] [--json]

Every variant runs in the same process, after warm-up steps, on a freshly built model, and is reported
as a ratio to the first one (the plain loop with gradient checkpointing), so each change's effect is
read off the same card in the same run. The variants add one change at a time:

- ``baseline-ckpt``: transformers + peft as most training scripts use them: an all-ones attention
  mask, the model's own loss over full fp32 logits, gradient checkpointing on every decoder layer.
- ``no-mask``: no attention mask (every row is a packed, full-length sequence), so PyTorch's scaled
  dot-product attention takes its causal flash-attention kernel instead of the masked one.
- ``chunked-loss``: the loss is computed from the last hidden states a slice of tokens at a time, each
  slice's logits recomputed in the backward pass, so the (tokens x vocabulary) fp32 logits never exist
  at once; the memory it frees buys a larger batch.
- ``compiled``: each decoder layer compiled by ``torch.compile`` (fuses the norms, rotary embedding,
  activations and the LoRA additions into fewer kernels).
- ``no-ckpt``: no gradient checkpointing, with the largest batch that fits (halved on out-of-memory).

FLOPs per token: 4N for LoRA (forward 2N, backward through the frozen weights 2N, no weight gradients
for them), N the base model's parameters; ``mfu`` counts those model FLOPs, ``hfu`` adds the 2N that
checkpointing recomputes. The peak is the H100's dense bf16 rate, 989 TFLOP/s (``--peak-tflops``).
On a CPU (``--device cpu``) the same code runs a tiny model: that is how the tests check it.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

MODEL_SHAPES: dict[str, dict[str, Any]] = {
    # TinyLlama-1.1B's shape
    "1b": {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32,
           "num_key_value_heads": 4, "vocab_size": 32000},
    # Mistral-7B's shape in the Llama architecture (7.24B parameters)
    "7b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "vocab_size": 32000},
    # Llama-3-8B's shape (8.03B parameters; its 128k vocabulary makes the logits the largest tensor)
    "8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "vocab_size": 128256},
    # for tests on a CPU
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "vocab_size": 256},
}
BASE_BATCH = {"1b": 8, "7b": 4, "8b": 4, "tiny": 2}
"""The batch of the reference figures (checkpointed loop, sequence 2048)."""
H100_BF16_DENSE_TFLOPS = 989.0


@dataclass(frozen=True)
class Variant:
    name: str
    checkpointing: bool
    attention_mask: bool
    chunked_loss: bool
    compiled: bool


VARIANTS = (
    Variant("baseline-ckpt", checkpointing=True, attention_mask=True, chunked_loss=False, compiled=False),
    Variant("no-mask", checkpointing=True, attention_mask=False, chunked_loss=False, compiled=False),
    Variant("chunked-loss", checkpointing=True, attention_mask=False, chunked_loss=True, compiled=False),
    Variant("compiled", checkpointing=True, attention_mask=False, chunked_loss=True, compiled=True),
    Variant("no-ckpt", checkpointing=False, attention_mask=False, chunked_loss=True, compiled=True),
)


def build_lora_model(shape: str, *, device: str, dtype: torch.dtype, rank: int = 16) -> Any:
    """A randomly initialised Llama model of ``shape`` on ``device`` with LoRA on all linear layers."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(**MODEL_SHAPES[shape], max_position_embeddings=8192, use_cache=False)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def base_parameter_count(model: Any) -> int:
    """N in the FLOPs formula: the frozen base model's parameters (LoRA's own are left out)."""
    return sum(p.numel() for p in model.parameters() if not p.requires_grad)


def causal_lm_loss(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The model's own loss: full logits, shifted labels (what a plain training loop computes)."""
    return model(input_ids=input_ids, attention_mask=attention_mask, labels=input_ids).loss


def chunked_causal_lm_loss(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                           chunk_tokens: int = 4096) -> torch.Tensor:
    """The same mean next-token loss, computed ``chunk_tokens`` positions at a time from the last
    hidden states; each slice's logits are recomputed in the backward pass instead of kept."""
    causal_lm = model.get_base_model()
    hidden = causal_lm.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    hidden = hidden[:, :-1].reshape(-1, hidden.shape[-1])
    targets = input_ids[:, 1:].reshape(-1)
    head = causal_lm.lm_head

    def slice_loss(states: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(head(states).float(), labels, reduction="sum")

    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, hidden.shape[0], chunk_tokens):
        total = total + checkpoint(slice_loss, hidden[start:start + chunk_tokens], targets[start:start + chunk_tokens],
                                   use_reentrant=False)
    return total / targets.numel()


def prepare(model: Any, variant: Variant) -> Any:
    """Checkpointing and compilation as the variant asks."""
    if variant.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if variant.compiled:
        for layer in model.get_base_model().model.layers:
            layer.compile()
    return model


def run_variant(shape: str, variant: Variant, *, device: str, dtype: torch.dtype, seq_len: int, batch: int,
                steps: int, warmup: int) -> dict[str, Any]:
    """Train ``warmup + steps`` steps; tokens/s over the timed steps."""
    model = prepare(build_lora_model(shape, device=device, dtype=dtype), variant)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, fused=device.startswith("cuda"))
    loss_fn = chunked_causal_lm_loss if variant.chunked_loss else causal_lm_loss
    vocab = MODEL_SHAPES[shape]["vocab_size"]
    generator = torch.Generator(device="cpu").manual_seed(0)
    losses: list[torch.Tensor] = []
    started = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            _synchronize(device)
            started = time.perf_counter()
        input_ids = torch.randint(0, vocab, (batch, seq_len), generator=generator).to(device)
        mask = torch.ones_like(input_ids) if variant.attention_mask else None
        loss = loss_fn(model, input_ids, mask)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())  # read once at the end: no host sync per step
    _synchronize(device)
    seconds = time.perf_counter() - started
    tokens_per_s = batch * seq_len * steps / seconds
    n = base_parameter_count(model)
    result = {"variant": variant.name, "batch": batch, "tokens_per_s": tokens_per_s, "step_s": seconds / steps,
              "params": n, "trainable_params": sum(p.numel() for p in trainable),
              "model_tflops": tokens_per_s * 4 * n / 1e12,
              "hardware_tflops": tokens_per_s * (6 if variant.checkpointing else 4) * n / 1e12,
              "last_loss": float(losses[-1]), "peak_memory_gb": _peak_memory_gb(device)}
    del model, optimizer, trainable
    _release(device)
    return result


def run_with_fallback(shape: str, variant: Variant, *, batch: int, **kwargs: Any) -> dict[str, Any]:
    """Run, halving the batch on out-of-memory; a variant that fits no batch is reported as such."""
    while batch >= 1:
        try:
            return run_variant(shape, variant, batch=batch, **kwargs)
        except torch.OutOfMemoryError:
            _release(kwargs["device"])
            print(f"{shape} {variant.name}: out of memory at batch {batch}", file=sys.stderr)
            batch //= 2
    return {"variant": variant.name, "batch": 0, "error": "out of memory at batch 1"}


def benchmark(shapes: list[str], variants: list[Variant], *, device: str, dtype: torch.dtype, seq_len: int,
              steps: int, warmup: int, peak_tflops: float, no_ckpt_batch_scale: float) -> dict[str, Any]:
    report: dict[str, Any] = {"device": _device_name(device), "seq_len": seq_len, "peak_tflops": peak_tflops,
                              "dtype": str(dtype).removeprefix("torch."), "models": {}}
    for shape in shapes:
        rows: list[dict[str, Any]] = []
        for variant in variants:
            # without checkpointing, memory is what limits the batch: start from the asked multiple
            batch_scale = 1.0 if variant.checkpointing else no_ckpt_batch_scale
            batch = max(1, int(BASE_BATCH[shape] * batch_scale))
            row = run_with_fallback(shape, variant, batch=batch, device=device, dtype=dtype, seq_len=seq_len,
                                    steps=steps, warmup=warmup + (2 if variant.compiled else 0))
            row["variant_settings"] = asdict(variant)
            if "tokens_per_s" in row:
                row["mfu"] = row["model_tflops"] / peak_tflops
                row["hfu"] = row["hardware_tflops"] / peak_tflops
                row["speedup"] = row["tokens_per_s"] / rows[0]["tokens_per_s"] if rows else 1.0
            rows.append(row)
            print(_format_row(shape, row), file=sys.stderr, flush=True)
        report["models"][shape] = rows
    return report


def _format_row(shape: str, row: dict[str, Any]) -> str:
    if "tokens_per_s" not in row:
        return f"{shape:>5} {row['variant']:<14} {row.get('error', '')}"
    return (f"{shape:>5} {row['variant']:<14} batch {row['batch']:>3} {row['tokens_per_s']:>10,.0f} tok/s "
            f"x{row.get('speedup', 1.0):.2f}  MFU {row.get('mfu', 0.0):6.1%}  HFU {row.get('hfu', 0.0):6.1%}  "
            f"peak {row['peak_memory_gb']:.1f} GB  loss {row['last_loss']:.3f}")


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_memory_gb(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else 0.0


def _release(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch._dynamo.reset()


def _device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(MODEL_SHAPES), default=["1b", "7b"])
    parser.add_argument("--variants", nargs="+", choices=[v.name for v in VARIANTS],
                        default=[v.name for v in VARIANTS])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compiled variants: 2 more)")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--no-ckpt-batch-scale", type=float, default=1.0,
                        help="the no-ckpt variant's batch as a multiple of the reference batch (halved on OOM)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.seq_len < 2:
        parser.error("--steps must be >= 1 and --seq-len >= 2")
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    variants = [v for v in VARIANTS if v.name in args.variants]
    report = benchmark(args.models, variants, device=args.device, dtype=dtype, seq_len=args.seq_len,
                       steps=args.steps, warmup=args.warmup, peak_tflops=args.peak_tflops,
                       no_ckpt_batch_scale=args.no_ckpt_batch_scale)
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
