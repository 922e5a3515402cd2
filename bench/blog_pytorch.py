"""The speed yardstick: the published mixture of VAEs (`trainer fit --preset blog`) in PyTorch.

The same network, loss and optimizer as the trainer's blog preset, written the way the design
document's PyTorch code is (one module per expert, a loop over experts): K = 10 experts; manager
Dense(784->128, sigmoid) -> Dense(128->K) -> softmax; each expert a VAE with encoder
Dense(784->128, sigmoid) -> mean, variance = 1e-5 + exp(Dense(128->10)); decoder
Dense(10->128, sigmoid) -> Dense(128->784, sigmoid), the mean of a Gaussian with std 0.5; loss =
batch mean of sum_k p_k(x) L_k(x) + 0.1 x population variance of importance_k; Adam, lr 1e-3,
batch 100; 2 threads, denormals flushed (FACTS: without it PyTorch slows 5x after ~50 epochs).

--experts batched, --adam fused and --compile are the fastest ways found to write the same thing in
PyTorch, so that the yardstick is PyTorch at its best, not only as published. It trains on the first
--limit training images of data/mnist for one epoch and prints one JSON
line with the samples/s of the training steps alone (data loading and set-up excluded, as in the
trainer's metrics.jsonl). Used by bench/blog-vs-pytorch.sh; not part of the test suite.
"""

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

PIXELS = 28 * 28
# Steps left out of the timing: the first ones allocate, and with --compile
# the first one compiles (tens of seconds).
WARM_UP = 5


def load_images(path: Path, limit: int) -> torch.Tensor:
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise SystemExit(f"{path}: cannot read the MNIST images ({e})")
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 2051 or rows * cols != PIXELS:
        raise SystemExit(f"{path}: not an MNIST image file")
    n = min(int(n), limit)
    pixels = np.frombuffer(raw[16 : 16 + n * PIXELS], dtype=np.uint8)
    return torch.from_numpy(pixels.reshape(n, PIXELS).astype(np.float32) / 255.0)


class Expert(nn.Module):
    def __init__(self, latent: int = 10, hidden: int = 128):
        super().__init__()
        self.enc = nn.Linear(PIXELS, hidden)
        self.mean = nn.Linear(hidden, latent)
        self.log_var = nn.Linear(hidden, latent)
        self.dec = nn.Linear(latent, hidden)
        self.out = nn.Linear(hidden, PIXELS)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image negative ELBO: Gaussian NLL (std 0.5) summed over pixels plus the analytic KL."""
        h = torch.sigmoid(self.enc(x))
        mean = self.mean(h)
        var = 1e-5 + torch.exp(self.log_var(h))
        z = mean + var.sqrt() * torch.randn_like(mean)
        recon = torch.sigmoid(self.out(torch.sigmoid(self.dec(z))))
        return gaussian_elbo(x, mean, var, recon)


def gaussian_elbo(x, mean, var, recon):
    """Per-image negative ELBO: Gaussian NLL (std 0.5) summed over pixels plus the analytic KL."""
    std = 0.5
    nll = ((recon - x) ** 2).sum(-1) / (2 * std**2) + PIXELS * (
        np.log(std) + 0.5 * np.log(2 * np.pi)
    )
    kl = 0.5 * (var + mean**2 - 1 - var.log()).sum(-1)
    return nll + kl


class BatchedExperts(nn.Module):
    """The K experts as stacked weights: one matmul for all encoders' first layers, batched
    matmuls (torch.bmm) for the rest. The same network as K `Expert`s, written for speed."""

    def __init__(self, k: int = 10, latent: int = 10, hidden: int = 128):
        super().__init__()

        def stacked(fan_in, fan_out):
            bound = 1 / np.sqrt(fan_in)
            w = nn.Parameter(torch.empty(k, fan_in, fan_out).uniform_(-bound, bound))
            b = nn.Parameter(torch.empty(k, 1, fan_out).uniform_(-bound, bound))
            return w, b

        self.k, self.hidden, self.latent = k, hidden, latent
        self.enc = nn.Linear(PIXELS, k * hidden)
        self.head_w, self.head_b = stacked(hidden, 2 * latent)
        self.dec_w, self.dec_b = stacked(latent, hidden)
        self.out_w, self.out_b = stacked(hidden, PIXELS)

    def losses(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        h = torch.sigmoid(self.enc(x)).view(b, self.k, self.hidden).transpose(0, 1)
        head = torch.baddbmm(self.head_b, h, self.head_w)
        mean, log_var = head[..., : self.latent], head[..., self.latent :]
        var = 1e-5 + torch.exp(log_var)
        z = mean + var.sqrt() * torch.randn_like(mean)
        d = torch.sigmoid(torch.baddbmm(self.dec_b, z, self.dec_w))
        recon = torch.sigmoid(torch.baddbmm(self.out_b, d, self.out_w))
        return gaussian_elbo(x.unsqueeze(0), mean, var, recon).t()


class Mixture(nn.Module):
    def __init__(self, k: int = 10, batched: bool = False):
        super().__init__()
        self.manager = nn.Sequential(
            nn.Linear(PIXELS, 128), nn.Sigmoid(), nn.Linear(128, k), nn.Softmax(dim=1)
        )
        if batched:
            self.batched = BatchedExperts(k)
        else:
            self.experts = nn.ModuleList(Expert() for _ in range(k))

    def loss(self, x: torch.Tensor, balance: float = 0.1) -> torch.Tensor:
        p = self.manager(x)
        if hasattr(self, "batched"):
            losses = self.batched.losses(x)
        else:
            losses = torch.stack([e.loss(x) for e in self.experts], dim=1)
        importance = p.sum(0)
        return (p * losses).sum(1).mean() + balance * importance.var(unbiased=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/mnist", type=Path)
    ap.add_argument("--limit", default=60_000, type=int, help="training images (one epoch)")
    ap.add_argument("--threads", default=2, type=int)
    ap.add_argument(
        "--device",
        default="cpu",
        help="cpu, or cuda (bench/gpu.sh): the images are put on it once, and each step is timed "
        "to its end (synchronized)",
    )
    ap.add_argument("--seed", default=0, type=int)
    ap.add_argument(
        "--experts",
        choices=["loop", "batched"],
        default="loop",
        help="one module per expert (as published) or stacked weights and batched matmuls",
    )
    ap.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the loss (forward and backward): PyTorch's fused C++ kernels",
    )
    ap.add_argument(
        "--adam",
        choices=["default", "fused"],
        default="default",
        help="torch.optim.Adam as published, or its fused CPU kernel (fused=True)",
    )
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    images = load_images(args.data / "train-images-idx3-ubyte.gz", args.limit).to(device)
    model = Mixture(batched=args.experts == "batched").to(device)
    fused = {"fused": True} if args.adam == "fused" else {}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **fused)
    loss_fn = torch.compile(model.loss) if args.compile else model.loss
    order = torch.randperm(len(images)).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    batch = 100
    steps = len(images) // batch
    seconds = 0.0
    for s in range(steps):
        x = images[order[s * batch : (s + 1) * batch]]
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(x)
        loss.backward()
        opt.step()
        sync()
        if s >= WARM_UP:
            seconds += time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "device": args.device,
                "threads": args.threads,
                "experts": args.experts,
                "adam": args.adam,
                "parameters": params,
                "compiled": args.compile,
                "samples": steps * batch,
                "samples_per_s": (steps - WARM_UP) * batch / seconds,
                "final_loss": loss.item(),
            }
        )
    )


if __name__ == "__main__":
    main()
