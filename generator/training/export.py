"""Turn training outputs into the shipped weights: fp16 base + fp16 LoRA + a JSON record.

    python -m generator.training.export --base runs/base --foveated runs/foveated \\
        --out generator/models/weights
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MAX_SHIPPED_BYTES = 25 * 1024 * 1024


def export_weights(*, base_dir: Path, foveated_dir: Path | None, out_dir: Path) -> dict:
    """Write ``default-base.safetensors``, ``default-foveated-lora.safetensors`` (if a foveated
    run is given) and ``default.json`` (both stages' logs) into ``out_dir``; returns the record."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from generator.errors import FoveaError
    from generator.models.default import BASE_FILE, CARD_FILE, LORA_FILE, load_model, save_weights

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_file = Path(base_dir) / "model.safetensors"
    model = load_model(base_file)
    save_weights(model, out_dir / BASE_FILE, dtype=torch.float16, metadata={"source": "base"})
    record = {"base": _read_log(Path(base_dir))}
    if foveated_dir is not None:
        lora_file = Path(foveated_dir) / "lora.safetensors"
        with safe_open(str(lora_file), framework="pt") as f:
            meta = f.metadata() or {}
        state = {k: v.half().contiguous() for k, v in load_file(str(lora_file)).items()}
        save_file(state, str(out_dir / LORA_FILE), metadata=meta)
        record["foveated"] = _read_log(Path(foveated_dir))
    elif (out_dir / LORA_FILE).exists():
        (out_dir / LORA_FILE).unlink()  # a stale adapter would not match the new base
    record["config"] = model.config_.as_dict()
    (out_dir / CARD_FILE).write_text(json.dumps(record, indent=1))
    for path in out_dir.glob("default*"):
        path.chmod(0o644)  # safetensors writes 0600; shipped files must be readable by all
    total = sum(p.stat().st_size for p in out_dir.glob("*.safetensors"))
    record["shipped_bytes"] = total
    if total > MAX_SHIPPED_BYTES:
        raise FoveaError(f"shipped weights in {out_dir} total {total / 1e6:.1f} MB, over 25 MB")
    return record


def _read_log(run_dir: Path) -> dict:
    path = run_dir / "log.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.training.export")
    parser.add_argument("--base", required=True, help="base training output folder")
    parser.add_argument("--foveated", default=None, help="foveated training output folder")
    parser.add_argument("--out", required=True, help="weights folder to write")
    args = parser.parse_args(argv)
    from generator.errors import FoveaError

    try:
        record = export_weights(base_dir=Path(args.base),
                                foveated_dir=Path(args.foveated) if args.foveated else None,
                                out_dir=Path(args.out))
    except FoveaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"exported to {args.out}: {record['shipped_bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
