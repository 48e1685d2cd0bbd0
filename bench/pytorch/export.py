"""Write a checkpoint of a spec model for neurite to load (PyTorch -> neurite).

    python export.py MODEL OUT.safetensors [--train-epochs N] [--limit-train N] [--seed S]

With `--train-epochs 0` (the default) the weights are the seeded initialization;
otherwise the model is trained for N epochs with its train.py recipe (the cosine
schedule spans those N epochs). The state_dict is saved with `safetensors.torch.save_file`
(metadata normalize.mean / normalize.std, plus model and epochs; `num_batches_tracked`
stays int64, gpt's `lm_head.weight` is a copy of `transformer.wte.weight`).
Beside it, OUT.json records the PyTorch test accuracy and mean cross-entropy on the
10,000 test images (image models), for comparison with `neurite` on the same file.
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import IMAGE_MODELS, build, state_dict_for_safetensors  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=["mlp", "lenet5", "resnet20", "vit", "gpt"])
    p.add_argument("out")
    p.add_argument("--train-epochs", type=int, default=0)
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--data", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from safetensors.torch import save_file

    report = {"model": a.model, "checkpoint": os.path.abspath(a.out), "train_epochs": a.train_epochs,
              "limit_train": a.limit_train, "seed": a.seed, "torch": torch.__version__, "threads": a.threads}
    if a.model == "gpt":
        if a.train_epochs:
            sys.exit("export.py trains image models only; gpt is exported at its initialization")
        torch.manual_seed(a.seed)
        model = build("gpt")
        save_file(state_dict_for_safetensors(model), a.out, metadata={"model": "gpt"})
    else:
        from data import FashionMNIST
        from train import evaluate, save, train

        ds = FashionMNIST(a.data, limit_train=a.limit_train)
        t0 = time.perf_counter()
        if a.train_epochs:
            model, history = train(a.model, ds, a.train_epochs, a.seed)
            report["history"] = history
        else:
            torch.manual_seed(a.seed)
            model = build(a.model)
        report["train_seconds"] = round(time.perf_counter() - t0, 1)
        if a.train_epochs:  # train() evaluated the final model already
            acc, loss = history[-1]["test_accuracy"], history[-1]["test_loss"]
        else:
            acc, loss = evaluate(model, ds.test_x, ds.test_y)
        report.update(test_accuracy=acc, test_loss=loss, test_images=ds.test_x.shape[0],
                      train_images=ds.train_x.shape[0], normalize_mean=ds.mean, normalize_std=ds.std)
        save(model, ds, a.out, {"model": a.model, "epochs": a.train_epochs})
        print(f"{a.model}: test accuracy {acc:.4f}, test loss {loss:.4f}")
    json_path = os.path.splitext(a.out)[0] + ".json"
    with open(json_path, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    print(f"wrote {a.out} and {json_path}")
    assert a.model in IMAGE_MODELS or a.model == "gpt"


if __name__ == "__main__":
    main()
