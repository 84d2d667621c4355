"""Imported by every Python the torchrun tests' GPU worker starts (this folder is first on its PYTHONPATH).

On torchrun rank 1 only:
- it prints a line shaped like a trainer event to stdout before the trainer's own code runs, which must
  never reach the job's events (the worker reads rank 0's stdout alone);
- in a job whose seed is FAULT_OOM_SEED, its GPU runs out of memory at the second optimizer step, as a
  CUDA OOM would on a real GPU (there is none here): `torch.OutOfMemoryError` from the optimizer.
"""

import json
import os
import sys

if os.environ.get("RANK") == "1":
    print(json.dumps({"event": "message", "level": "warn", "message": "printed by rank 1"}), flush=True)
    fault_seed = os.environ.get("FAULT_OOM_SEED")
    if fault_seed:
        import torch
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        steps = 0

        def _out_of_memory_at_step_two(optimizer: object, args: object, kwargs: object) -> None:
            global steps
            config = sys.argv[sys.argv.index("--config") + 1]
            with open(config, encoding="utf-8") as handle:
                if str(json.load(handle)["seed"]) != fault_seed:
                    return
            steps += 1
            if steps == 2:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (rank 1, simulated)")

        register_optimizer_step_pre_hook(_out_of_memory_at_step_two)
