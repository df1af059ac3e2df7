"""A graph with planted communities, written as an edge list and node labels (the graph demo and benchmark).

Degree-corrected stochastic block model (Karrer & Newman 2011), sampled edge by edge: every node has a community
(uniform) and a degree weight theta (Pareto with exponent ``degree_exponent``, so degrees are skewed as in real
networks); each of the n x degree / 2 edges picks its first end by theta, and its second end by theta inside the
first end's community with probability 1 - ``mixing`` and anywhere otherwise. Self-loops are dropped, repeated
edges kept (the walk job merges them). A pure function of its arguments and ``seed``.

    python -m w2vspark.graphs --nodes 2000 --communities 10 --out data/graph

writes ``edges/`` (Parquet src: bigint, dst: bigint) and ``labels/`` (Parquet id: bigint, label: string).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def planted_graph(num_nodes: int, num_communities: int, degree: float = 10.0, mixing: float = 0.2,
                  degree_exponent: float = 2.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (src (m,) int64, dst (m,) int64, community (n,) int64)."""
    if num_nodes < 2 or num_communities < 1 or num_communities > num_nodes:
        raise ValueError(f"need 2 <= nodes and 1 <= communities <= nodes, got {num_nodes} and {num_communities}")
    if not 0 <= mixing <= 1 or degree <= 0 or degree_exponent <= 1:
        raise ValueError("need 0 <= mixing <= 1, degree > 0 and degree_exponent > 1")
    rng = np.random.default_rng([seed, 0x6A7])
    community = rng.integers(0, num_communities, size=num_nodes)  # (n,)
    theta = (1.0 - rng.random(num_nodes)) ** (-1.0 / (degree_exponent - 1.0))  # (n,) Pareto, minimum 1
    theta = np.minimum(theta, np.sqrt(num_nodes) * theta.mean())  # no node links to a large share of all
    m = int(round(num_nodes * degree / 2))
    src = rng.choice(num_nodes, size=m, p=theta / theta.sum())  # (m,)
    dst = rng.choice(num_nodes, size=m, p=theta / theta.sum())  # anywhere, replaced below for inside edges
    inside = rng.random(m) >= mixing
    order = np.argsort(community, kind="stable")  # nodes grouped by community
    bounds = np.concatenate([[0], np.cumsum(np.bincount(community, minlength=num_communities))])
    for c in range(num_communities):
        members = order[bounds[c]:bounds[c + 1]]
        pick = np.flatnonzero(inside & (community[src] == c))
        weights = theta[members]
        dst[pick] = members[rng.choice(len(members), size=len(pick), p=weights / weights.sum())]
    keep = src != dst
    return src[keep].astype(np.int64), dst[keep].astype(np.int64), community.astype(np.int64)


def write_graph(out: str | Path, src: np.ndarray, dst: np.ndarray, community: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    (out / "edges").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"src": src, "dst": dst}), out / "edges" / "part-0.parquet")
    labels = pa.table({"id": np.arange(len(community), dtype=np.int64),
                       "label": [f"c{c}" for c in community.tolist()]})
    pq.write_table(labels, out / "labels" / "part-0.parquet")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--communities", type=int, default=10)
    parser.add_argument("--degree", type=float, default=10.0, help="mean degree")
    parser.add_argument("--mixing", type=float, default=0.2, help="share of edges that leave their community")
    parser.add_argument("--degree-exponent", type=float, default=2.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="folder for edges/ and labels/")
    args = parser.parse_args(argv)
    try:
        src, dst, community = planted_graph(args.nodes, args.communities, args.degree, args.mixing,
                                            args.degree_exponent, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    write_graph(args.out, src, dst, community)
    print(f"{args.nodes} nodes, {len(src)} edges, {args.communities} communities -> {args.out}")


if __name__ == "__main__":
    main()
