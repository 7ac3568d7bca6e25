#!/usr/bin/python3
"""pagerank.py: PageRank by power iteration on a synthetic power-law (R-MAT)
graph held in memory as CSR.

A proxy, for recording memory demand only, for CloudSuite's graph-analytics
benchmark (Spark GraphX PageRank on a Twitter follower graph), which the
SmarTmem thesis's Scenarios 2 and 3 run in each VM.  Neither Spark nor
CloudSuite is packaged by Debian; this program does the same job with numpy
and scipy (Debian: python3-numpy, python3-scipy; needed to record a trace, not
to build or test memshare).

What it does, in the order GraphX's job does it:
  1. load: the edge list, drawn in partitions of --partition edges as GraphX
     reads the edge file into its edge RDD: R-MAT (Chakrabarti et al.; the
     Graph500 generator's a, b, c = 0.57, 0.19, 0.19) over 2^--scale vertices,
     --edge-factor edges per vertex, the vertex ids permuted (hubs are not the
     small numbers) - a power-law in- and out-degree, as Twitter's follower
     graph has.  Kept for the whole run (GraphX caches it), 8 bytes an edge.
  2. graph: the in-edges of every vertex as CSR (scipy, the edge weights
     1 / out-degree of the source, GraphX's PageRank edge attribute), and the
     out-degrees; kept for the whole run.
  3. iterate: --iterations power iterations of PageRank (damping 0.85, the
     rank of dangling vertices spread evenly), GraphX's static PageRank.
  4. report: the top ranks.

What it is not: no JVM (no heap, no garbage collector, no object headers:
GraphX holds several times more bytes per edge, and also replicates vertex
attributes to the edge partitions), no shuffle, one process on one machine; a
synthetic graph, not Twitter's (Twitter 2010: 41.7 M users, 1.47 G edges).
Its memory over time has the job's phases (a fast rise while loading and
building the graph, a plateau of iterations over it, all freed at the end),
not Spark's bytes.

Prints one line per phase on stderr (phase, seconds, resident MiB).
"""
import sys
import time

import numpy as np
import scipy.sparse as sp

from workload_cli import Parser, log, require_positive

# Graph500's R-MAT quadrant probabilities (d = 1 - a - b - c = 0.05).
RMAT_A, RMAT_B, RMAT_C = 0.57, 0.19, 0.19


def rmat_edges(rng, scale, count):
    """count R-MAT edges over 2^scale vertices: at each of scale levels, a
    quadrant of the adjacency matrix chosen with probabilities a, b, c, d."""
    src = np.zeros(count, dtype=np.int32)
    dst = np.zeros(count, dtype=np.int32)
    for level in range(scale):
        r = rng.random(count, dtype=np.float32)
        lower = r >= RMAT_A + RMAT_B                      # quadrant c or d: source bit set
        right = ((r >= RMAT_A) & ~lower) | (r >= RMAT_A + RMAT_B + RMAT_C)  # b or d
        src |= lower.astype(np.int32) << level
        dst |= right.astype(np.int32) << level
    return src, dst


def load_edges(rng, args):
    """The cached edge list (src, dst), drawn partition by partition."""
    vertices = 1 << args.scale
    edges = vertices * args.edge_factor
    src = np.empty(edges, dtype=np.int32)
    dst = np.empty(edges, dtype=np.int32)
    relabel = rng.permutation(vertices).astype(np.int32)
    for start in range(0, edges, args.partition):
        count = min(args.partition, edges - start)
        s, d = rmat_edges(rng, args.scale, count)
        src[start:start + count] = relabel[s]
        dst[start:start + count] = relabel[d]
    return src, dst


def in_edges(src, dst, vertices):
    """CSR of the in-edges (row = destination), weights 1 / out-degree of the source."""
    out_degree = np.bincount(src, minlength=vertices).astype(np.float32)
    weights = 1.0 / out_degree[src]
    graph = sp.csr_matrix((weights, (dst, src)), shape=(vertices, vertices), dtype=np.float32)
    return graph, out_degree


def pagerank(graph, out_degree, iterations, damping=0.85):
    n = graph.shape[0]
    dangling = out_degree == 0
    rank = np.full(n, 1.0 / n, dtype=np.float32)
    for _ in range(iterations):
        spread = damping * float(rank[dangling].sum()) / n
        rank = (1 - damping) / n + spread + damping * (graph @ rank)
        yield rank


def parse_args():
    p = Parser(description="PageRank on a synthetic R-MAT graph "
                                "(a proxy for CloudSuite graph-analytics; see the header)")
    p.add_argument("--scale", type=int, default=22, help="2^SCALE vertices (default 22: 4.2 M)")
    p.add_argument("--edge-factor", type=int, default=16, help="edges per vertex (Graph500: 16)")
    p.add_argument("--iterations", type=int, default=20, help="power iterations (default 20)")
    p.add_argument("--partition", type=int, default=1 << 22, help="edges per loaded partition")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if not 1 <= args.scale <= 30:
        p.error(f"--scale {args.scale}: must be 1 to 30")
    require_positive(p, args, ("edge_factor", "iterations", "partition"))
    return args


def main():
    args = parse_args()
    t0 = time.monotonic()
    rng = np.random.default_rng(args.seed)
    src, dst = load_edges(rng, args)
    log("pagerank", "loaded", t0)
    graph, out_degree = in_edges(src, dst, 1 << args.scale)
    log("pagerank", "graph built", t0)
    rank = None
    for it, rank in enumerate(pagerank(graph, out_degree, args.iterations), 1):
        if it % 5 == 0 or it == args.iterations:
            log("pagerank", f"iteration {it}", t0)
    print(f"pagerank: rank sum {float(rank.sum(dtype=np.float64)):.4f}", file=sys.stderr)
    top = np.argsort(rank)[-3:][::-1]
    print("pagerank: top vertices " + ", ".join(f"{v} ({rank[v]:.2e})" for v in top), file=sys.stderr)
    log("pagerank", "done", t0)


if __name__ == "__main__":
    main()
