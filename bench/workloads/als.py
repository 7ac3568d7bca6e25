#!/usr/bin/python3
"""als.py: collaborative filtering by alternating least squares (ALS) on a
synthetic MovieLens-shaped rating matrix, all of it held in memory.

A proxy, for recording memory demand only, for CloudSuite's in-memory-analytics
benchmark (Spark MLlib ALS on MovieLens), which the SmarTmem thesis's Scenarios
1 and 3 run in each VM.  Neither Spark nor CloudSuite is packaged by Debian;
this program does the same job with numpy and scipy (Debian: python3-numpy,
python3-scipy; needed to record a trace, not to build or test memshare).

What it does, in the order Spark's job does it:
  1. load: the ratings (user, item, rating 1-5), drawn partition by partition
     as Spark reads the CSV into its cached ratings RDD: items by a power law
     of popularity (Zipf, exponent --zipf: with 0.6 the most popular of 26,744
     items has 0.7 % of the ratings, MovieLens 20M's 0.3 %), users by a milder
     one (exponent 0.4: the most active user rates 0.05 %, as in MovieLens), ratings from a rank-5 latent taste model plus
     noise, rounded and clipped to 1-5.  Kept for the whole run (Spark caches
     it), as a packed table of 12 bytes a rating.
  2. blocks: the ratings by user (CSR) and by item (CSC), MLlib's "in blocks"
     of the two half-iterations, each with a pattern copy (the Gram sums);
     kept for the whole run.
  3. train: --iterations of ALS-WR (rank --rank, regularisation lambda x the
     number of a row's ratings, MLlib's default): each half-iteration solves
     every user's (then every item's) k x k normal equations
     (sum of v v^T + lambda n I) x = sum of r v, the Gram sums as one sparse
     product with the other side's flattened outer products.
  4. evaluate: the RMSE over all the cached ratings (MovieLensALS prints one).

What it is not: no JVM (no heap, no garbage collector, no object headers:
Spark holds several times more bytes per rating), no shuffle between
executors, no serialisation, one process on one machine; duplicate
(user, item) pairs are merged in the blocks, at their mean rating (MovieLens
has none).  Its memory over time has
the job's phases (a ramp while loading and building the blocks, a plateau of
iterations over the cached data, all freed at the end), not Spark's bytes.

Prints one line per phase on stderr (phase, seconds, resident MiB).
"""
import sys
import time

import numpy as np
import scipy.sparse as sp

from workload_cli import Parser, log, require_positive


def power_law(rng, n, exponent):
    """Probabilities of n ids, the i-th most popular with weight 1/i^exponent,
    the ranks shuffled (popular ids are not the small numbers)."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    rng.shuffle(weights)
    return weights / weights.sum()


def load_ratings(rng, args):
    """The cached ratings table, drawn in partitions of --partition ratings."""
    table = np.empty(args.ratings, dtype=[("user", np.int32), ("item", np.int32), ("rating", np.float32)])
    user_cdf = np.cumsum(power_law(rng, args.users, 0.4))
    item_cdf = np.cumsum(power_law(rng, args.items, args.zipf))
    taste_u = rng.normal(0, 0.6, (args.users, 5)).astype(np.float32)
    taste_i = rng.normal(0, 0.6, (args.items, 5)).astype(np.float32)
    for start in range(0, args.ratings, args.partition):
        part = table[start:start + args.partition]
        users = np.minimum(np.searchsorted(user_cdf, rng.random(len(part))), args.users - 1)
        items = np.minimum(np.searchsorted(item_cdf, rng.random(len(part))), args.items - 1)
        score = 3.5 + np.einsum("ij,ij->i", taste_u[users], taste_i[items]) + rng.normal(0, 0.5, len(part))
        part["user"], part["item"] = users, items
        part["rating"] = np.clip(np.rint(score), 1, 5)
    return table


def in_blocks(rows, cols, values, shape):
    """The ratings grouped by row (CSR), and the same pattern with ones."""
    ratings = sp.csr_matrix((values, (rows, cols)), shape=shape, dtype=np.float32)
    copies = sp.csr_matrix((np.ones_like(values), (rows, cols)), shape=shape, dtype=np.float32)
    ratings.sum_duplicates()
    copies.sum_duplicates()
    ratings.data /= copies.data  # a pair rated twice counts once, at its mean rating
    pattern = sp.csr_matrix((np.ones_like(ratings.data), ratings.indices, ratings.indptr), shape=shape)
    return ratings, pattern


def solve_side(ratings, pattern, other, lam):
    """New factors of every row: (sum v v^T + lam n I) x = sum r v over its ratings."""
    k = other.shape[1]
    outer = np.einsum("ij,ik->ijk", other, other).reshape(len(other), k * k)
    gram = (pattern @ outer).reshape(-1, k, k)
    rhs = ratings @ other
    counts = np.diff(ratings.indptr).astype(np.float32)
    gram += (lam * np.maximum(counts, 1))[:, None, None] * np.eye(k, dtype=np.float32)
    return cholesky_solve(gram, rhs)


def cholesky_solve(a, b):
    """Solve the n symmetric positive definite k x k systems a x = b at once, by
    Cholesky as MLlib does; one numpy operation over all n per step, because
    np.linalg.solve calls LAPACK once per system (5x slower here for 138k systems of 10)."""
    n, k = b.shape
    low = np.zeros_like(a)
    for j in range(k):
        low[:, j, j] = np.sqrt(a[:, j, j] - np.einsum("ni,ni->n", low[:, j, :j], low[:, j, :j]))
        low[:, j + 1:, j] = (a[:, j + 1:, j] - np.einsum("nri,ni->nr", low[:, j + 1:, :j], low[:, j, :j])) \
            / low[:, j, j][:, None]
    y = np.empty_like(b)
    for j in range(k):
        y[:, j] = (b[:, j] - np.einsum("ni,ni->n", low[:, j, :j], y[:, :j])) / low[:, j, j]
    x = np.empty_like(b)
    for j in reversed(range(k)):
        x[:, j] = (y[:, j] - np.einsum("ni,ni->n", low[:, j + 1:, j], x[:, j + 1:])) / low[:, j, j]
    return x


def rmse(table, users, items, partition):
    total = 0.0
    for start in range(0, len(table), partition):
        part = table[start:start + partition]
        pred = np.einsum("ij,ij->i", users[part["user"]], items[part["item"]])
        total += float(np.sum((pred - part["rating"]) ** 2))
    return (total / len(table)) ** 0.5


def parse_args():
    p = Parser(description="ALS on a synthetic MovieLens-shaped rating matrix "
                                "(a proxy for CloudSuite in-memory-analytics; see the header)")
    p.add_argument("--users", type=int, default=138493, help="users (MovieLens 20M: 138493)")
    p.add_argument("--items", type=int, default=26744, help="items (MovieLens 20M: 26744)")
    p.add_argument("--ratings", type=int, default=20000263, help="ratings (MovieLens 20M: 20000263)")
    p.add_argument("--zipf", type=float, default=0.6,
                   help="item popularity exponent (default 0.6: the top item has 0.7%% of the ratings)")
    p.add_argument("--rank", type=int, default=10, help="latent factors (MLlib default 10)")
    p.add_argument("--iterations", type=int, default=10, help="ALS iterations (MLlib default 10)")
    p.add_argument("--lambda", dest="lam", type=float, default=0.1, help="regularisation (default 0.1)")
    p.add_argument("--partition", type=int, default=1 << 20, help="ratings per loaded partition")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    require_positive(p, args, ("users", "items", "ratings", "rank", "iterations", "partition"))
    return args


def main():
    args = parse_args()
    t0 = time.monotonic()
    rng = np.random.default_rng(args.seed)
    table = load_ratings(rng, args)
    log("als", "loaded", t0)
    by_user, by_user_pattern = in_blocks(table["user"], table["item"], table["rating"], (args.users, args.items))
    by_item, by_item_pattern = in_blocks(table["item"], table["user"], table["rating"], (args.items, args.users))
    log("als", "blocks built", t0)
    users = rng.normal(0, 0.1, (args.users, args.rank)).astype(np.float32)
    items = rng.normal(0, 0.1, (args.items, args.rank)).astype(np.float32)
    for it in range(args.iterations):
        users = solve_side(by_user, by_user_pattern, items, args.lam)
        items = solve_side(by_item, by_item_pattern, users, args.lam)
        log("als", f"iteration {it + 1}", t0)
    print(f"als: training RMSE {rmse(table, users, items, args.partition):.4f}", file=sys.stderr)
    log("als", "done", t0)


if __name__ == "__main__":
    main()
