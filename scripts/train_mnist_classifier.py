"""Trains the MNIST classifier shipped with gankit (the reader of the ``mnist`` and
``stacked-mnist`` mode metrics) and writes its weights (safetensors).

    GANKIT_MNIST=DIR python scripts/train_mnist_classifier.py

DIR holds MNIST's four IDX files (see ``builtin:mnist``). It trains on the 60,000 training digits
and prints the accuracy on the 10,000 test digits at 28 px, and after a round trip through 16 and
32 px (how a generator trained at those sizes is read).
"""
from safetensors.torch import save_file

from gankit.metrics.modes import MNIST_WEIGHTS, mnist_tensors, train_mnist_classifier

train, test = mnist_tensors()
model, acc = train_mnist_classifier(train, test)
print("test accuracy: " + ", ".join(f"{k.split('_')[-1]} {v:.4f}" for k, v in acc.items()))
MNIST_WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(MNIST_WEIGHTS),
          metadata={k: f"{v:.4f}" for k, v in acc.items()})
print(f"wrote {MNIST_WEIGHTS}")
