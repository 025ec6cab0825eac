"""The text of ``minilayerlr compare --help``: what the comparison runs, its tasks and its outputs."""
from .scale_flags import SCALE_HELP

COMPARE_DESCRIPTION = f"""\
Run the paper's comparison on small CPU-sized tasks, over one or more seeds.

Every method of the default line-up runs on each task from the same initial weights
(one set per seed): tuned methods (SGD-m, AdamW, their cosine-decayed versions, K-FAC,
...) once per learning rate of their grid, the best rate chosen by mean final training
loss; tuning-free ones
(SGD-m-LS, AdamW-LS, ...) once; GD-LS only where training is full batch (gcn).

Tasks:
  autoencoder  784-256-128-64-16-64-128-256-784 tanh MLP (Hinton & Salakhutdinov
               2006's deep MNIST autoencoder scaled to a quarter), sigmoid BCE,
               on 4,000 embedded MNIST digits (1,000 test), batch 100, 8 epochs
  cnn          conv3x3(1->8)+ReLU+maxpool, conv3x3(8->16)+ReLU+maxpool, dense->10,
               softmax CE, same digits, batch 100, 3 epochs
  gcn          2-layer GCN 32-16-4, ReLU, masked softmax CE, on a contextual
               stochastic block model graph (1,200 nodes), 200 full-batch steps
  tanh-mlp     stress task: 784-64-64-64-10 tanh MLP classifier, softmax CE, the
               same digits, batch 100, 5 epochs
  regression   stress task: 20-32-32-32-32-1 tanh MLP fitting a random tanh teacher
               (2,000 Gaussian inputs), squared error, batch 50, 10 epochs
--quick uses 16x16 synthetic digits, smaller models, fewer epochs and runs
every method once (tuned ones at the middle of their grid).

Writes into --out, run by run: runs/<run>.json as each run ends (Ctrl-C keeps
them; --resume DIR continues), then results.md (the verdict per task),
results.csv, results.json and PNG plots (loss against epoch, seconds and
gradient equivalents; per-layer step sizes; per-layer stability).
The default took 14 min 20 s with --jobs 1 on the project's 2-core machine
(README, Quick start); --jobs 2 took 9 min 43 s before the evaluation got faster.

{SCALE_HELP}examples:
  minilayerlr compare --quick
  minilayerlr compare --seeds 5 --out runs/five-seeds
  minilayerlr compare --resume runs/five-seeds
  minilayerlr compare --ablation --task cnn
  minilayerlr compare --task gcn --data cora --data-dir ~/data/cora
"""
