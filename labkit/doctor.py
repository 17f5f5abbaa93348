"""`labkit doctor`: is this machine ready for the course? One OK/FAIL/INFO line per check."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from dataclasses import dataclass

from labkit import paths

LIBRARIES = (
    "torch", "transformers", "peft", "bitsandbytes", "datasets", "accelerate", "trl",
    "sentence-transformers", "gguf", "jupyterlab", "ipywidgets", "matplotlib", "pyyaml",
)


@dataclass
class Check:
    status: str  # OK | FAIL | INFO
    item: str
    detail: str

    def line(self) -> str:
        return f"[{self.status:>4}] {self.item}: {self.detail}"


def _cpu_flags() -> set[str]:
    try:
        for row in open("/proc/cpuinfo", encoding="utf-8"):
            if row.startswith("flags"):
                return set(row.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def run_checks(load_models: bool = True) -> list[Check]:
    checks: list[Check] = []
    ok = sys.version_info >= (3, 10)
    checks.append(Check("OK" if ok else "FAIL", "python", platform.python_version()))
    for lib in LIBRARIES:
        try:
            checks.append(Check("OK", lib, importlib.metadata.version(lib)))
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check("FAIL", lib, "not installed: run `make lab` or `pip install -e .`"))

    flags = _cpu_flags()
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    have = [f for f in wanted if f in flags]
    checks.append(Check("INFO", "cpu features", ", ".join(have) or "none of " + ", ".join(wanted)))
    checks.append(Check(
        "OK" if "avx2" in flags or platform.machine() != "x86_64" else "FAIL",
        "4-bit NF4 on CPU", "bitsandbytes needs AVX2 on x86" + (
            "; AVX512-BF16 present: fast bf16 path" if "avx512_bf16" in flags else ""),
    ))
    # which compute path training takes here (labkit.sft.train.use_bf16 reads the same flags)
    from labkit.models import BF16_FLAGS

    native = [f for f in BF16_FLAGS if f in flags]
    if native:
        path = f"bf16 autocast ({' and '.join(native)}: native bf16 dot products)"
    else:
        path = ("fp32 (no AVX512-BF16 or AMX: bf16 matmuls would be emulated, slower than fp32; "
                "`precision: bf16` in a run config forces it anyway)")
    checks.append(Check("INFO", "training precision on cpu", path))
    from labkit import allocator

    checks.append(Check("INFO", "cpu allocator", allocator.mode()))
    try:
        import torch

        checks.append(Check("INFO", "threads", f"torch uses {torch.get_num_threads()} of {os.cpu_count()} cpus"))
        if torch.cuda.is_available():
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            checks.append(Check("INFO", "cuda", f"{torch.cuda.device_count()} device(s): {names}"))
        else:
            checks.append(Check("INFO", "cuda", "none: training runs on the CPU (fine for this course)"))
    except Exception as exc:  # torch import itself failing is what the doctor is for
        checks.append(Check("FAIL", "torch import", repr(exc)))

    checks.append(Check("INFO", "model cache", f"{paths.shown(paths.cache_dir())}  (set LABKIT_CACHE_DIR to move it)"))
    checks.append(Check("INFO", "runs", f"{paths.shown(paths.runs_dir())}  (set LABKIT_RUNS_DIR to move it)"))
    checks.append(Check("INFO", "progress", f"{paths.shown(paths.progress_file())}  (set LABKIT_PROGRESS to move it)"))
    checks.append(Check("INFO", "hub access", "offline (HF_HUB_OFFLINE=1)" if os.environ.get("HF_HUB_OFFLINE") == "1"
                        else "allowed only when you name a hub id"))

    from labkit import models

    for name, entry in models.EMBEDDED.items():
        try:
            if entry.kind == "causal-lm":
                where = models.gguf_path()
                checks.append(Check("OK", f"{name} file", paths.shown(where)))
                if load_models:
                    lm = models.load(name)
                    reply = models.generate(lm, "What is the capital of France?", max_new_tokens=12)
                    good = "paris" in reply.lower()
                    checks.append(Check("OK" if good else "FAIL", f"{name} loads",
                                        f"{lm.load_seconds:.1f}s ({'cache' if lm.from_cache else 'converted now'}); "
                                        f"says: {reply!r}"))
            else:
                where = models.embedder_path(name)
                checks.append(Check("OK", f"{name} files", paths.shown(where)))
                if load_models:
                    emb = models.load_embedder(name)
                    dim = emb.get_embedding_dimension() if hasattr(emb, "get_embedding_dimension") \
                        else emb.get_sentence_embedding_dimension()
                    checks.append(Check("OK" if dim == 384 else "FAIL", f"{name} loads", f"{dim} dims"))
        except Exception as exc:
            checks.append(Check("FAIL", name, str(exc).splitlines()[0]))
    return checks


def main(load_models: bool = True) -> int:
    checks = run_checks(load_models=load_models)
    for check in checks:
        print(check.line())
    failed = [c for c in checks if c.status == "FAIL"]
    print(f"\n{len(failed)} problem(s) found." if failed else "\nAll good: this machine is ready for the course.")
    return 1 if failed else 0
