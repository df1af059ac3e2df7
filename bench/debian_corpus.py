"""Build the benchmark's English corpus (10M+ words) from Debian packages, offline from any data hub.

    python bench/debian_corpus.py [--out bench/cache/corpus] [--min-words 10000000]

Downloads the packages below with ``apt-get download`` (no root, nothing installed), unpacks them with
``dpkg-deb -x`` and takes the running text of their plain-text files: dictd databases (``*.dict.dz``,
gzip-readable), reStructuredText and text sources (``*.rst``, ``*.txt`` and their ``.gz``; a file whose text was already taken is skipped). Every paragraph
(lines up to a blank line) becomes one line, lowercased, letters a-z only; paragraphs that are mostly not
prose (tables, code, markup) are dropped. The shipped King James Bible (data/kjv.txt.gz) is added. Lines are
shuffled with a fixed seed, so that no trainer sees one source at a time, and written to
``OUT/debian_en.txt`` with ``OUT/debian_en.json`` (packages, versions, licences, words per source).
Reruns reuse the downloaded packages.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# package -> licence of its text (from the package's copyright file)
PACKAGES = {
    "dict-gcide": "GPL-2+ (GNU Collaborative International Dictionary of English)",
    "dict-wn": "WordNet 3.0 licence (Princeton, BSD-like)",
    "dict-foldoc": "GFDL-1.1+ (Free On-line Dictionary of Computing)",
    "dict-jargon": "public domain (Jargon File)",
    "dict-devil": "public domain (The Devil's Dictionary)",
    "linux-doc-6.1": "GPL-2 (Linux kernel documentation)",
    "python3.11-doc": "PSF-2.0 (Python documentation)",
}
TEXT_SUFFIXES = (".dict.dz", ".rst", ".txt", ".rst.gz", ".txt.gz")
MAX_LINE_WORDS = 1000  # longer paragraphs are cut into lines of at most this many words
NON_LETTERS = re.compile(r"[^a-z]+")


class CorpusError(RuntimeError):
    pass


def download(packages: list[str], debs: Path) -> dict[str, Path]:
    """-> package -> .deb path; downloads only what is not cached. Packages apt cannot find are skipped."""
    debs.mkdir(parents=True, exist_ok=True)
    found = {}
    for name in packages:
        cached = sorted(debs.glob(f"{name}_*.deb"))
        if not cached:
            proc = subprocess.run(["apt-get", "download", name], cwd=debs, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"skipping {name}: apt-get download failed: {proc.stderr.strip()[:300]}", file=sys.stderr)
                continue
            cached = sorted(debs.glob(f"{name}_*.deb"))
        if cached:
            found[name] = cached[-1]
    return found


def unpack(deb: Path, into: Path) -> str:
    """Unpack a .deb (replacing an earlier unpack) -> its version."""
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True)
    return subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True,
                          text=True).stdout.strip()


def text_files(tree: Path):
    """The plain-text files of an unpacked package, in a fixed order (licence and packaging files skipped)."""
    for path in sorted(tree.rglob("*")):
        if not path.is_file() or not path.name.endswith(TEXT_SUFFIXES):
            continue
        if path.name.startswith(("copyright", "changelog", "README.Debian", "NEWS.Debian")):
            continue
        yield path


def read_text(path: Path) -> str:
    opener = gzip.open if path.suffix in (".dz", ".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if b"\0" in data[:4096]:
        return ""
    return data.decode("utf-8", errors="replace")


def paragraphs(text: str):
    """Blank-line separated paragraphs -> normalized lines of prose."""
    for block in re.split(r"\n\s*\n", text):
        letters = sum(c.isalpha() for c in block)
        visible = sum(not c.isspace() for c in block)
        if visible == 0 or letters / visible < 0.75:  # tables, code, markup
            continue
        words = NON_LETTERS.sub(" ", block.lower()).split()
        if len(words) < 4:
            continue
        for start in range(0, len(words), MAX_LINE_WORDS):
            yield " ".join(words[start:start + MAX_LINE_WORDS])


def build(out: Path, packages: list[str], min_words: int, seed: int = 2013) -> Path:
    work = out / "pkgs"
    debs = download(packages, out / "debs")
    lines, sources, seen = [], {}, set()
    for name, deb in debs.items():
        version = unpack(deb, work / name)
        got = []
        for path in text_files(work / name):
            text = read_text(path)
            digest = hashlib.sha1(text.encode()).digest()
            if digest not in seen:  # documentation packages ship the same source as .rst.gz and .rst.txt
                seen.add(digest)
                got += paragraphs(text)
        sources[name] = {"version": version, "licence": PACKAGES.get(name, "see the package's copyright file"),
                         "lines": len(got), "words": sum(line.count(" ") + 1 for line in got)}
        lines += got
        print(f"{name} {version}: {sources[name]['words']:,} words", file=sys.stderr)
    kjv = ROOT / "data" / "kjv.txt.gz"
    got = list(paragraphs(gzip.open(kjv, "rt", encoding="utf-8").read().replace("\n", "\n\n")))
    sources["kjv"] = {"file": "data/kjv.txt.gz", "licence": "public domain", "lines": len(got),
                      "words": sum(line.count(" ") + 1 for line in got)}
    lines += got
    total = sum(s["words"] for s in sources.values())
    if total < min_words:
        raise CorpusError(f"only {total:,} words from {sorted(sources)}; need {min_words:,} (are the apt lists "
                          f"current? run 'apt-get update' as root, or name a corpus with BENCH_CORPUS=FILE)")
    random.Random(seed).shuffle(lines)
    target = out / "debian_en.txt"
    tmp = target.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(target)
    (out / "debian_en.json").write_text(json.dumps({"words": total, "lines": len(lines), "seed": seed,
                                                    "sources": sources}, indent=2) + "\n")
    shutil.rmtree(work)
    print(f"{target}: {total:,} words, {len(lines):,} lines", file=sys.stderr)
    return target


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "bench" / "cache" / "corpus"))
    p.add_argument("--packages", default=",".join(PACKAGES), help="comma-separated Debian package names")
    p.add_argument("--min-words", type=int, default=10_000_000)
    args = p.parse_args(argv)
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        sys.exit("bench/debian_corpus.py needs apt-get and dpkg-deb (Debian/Ubuntu); or name a corpus with "
                 "BENCH_CORPUS=FILE")
    try:
        print(build(Path(args.out), [x for x in args.packages.split(",") if x], args.min_words))
    except CorpusError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
