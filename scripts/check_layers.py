#!/usr/bin/env python3
"""Fails if the library's folders include each other in a loop, or if a
folder includes one above it in docs/ARCHITECTURE.md's order. Prints the
folder graph with --print."""
import collections
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# Lowest first, as docs/ARCHITECTURE.md draws them ("." is the WAS core, include/was/*.h).
ORDER = ["core", "nn", "models", ".", "data", "paper", "eval", "record", "io", "distributed", "train", "run", "report"]


def folder_of(path):
    rel = os.path.relpath(path, ROOT)
    for prefix in ("include/was/", "src/"):
        if rel.startswith(prefix):
            return os.path.dirname(rel[len(prefix):]) or "."
    return None


def main():
    edges = collections.defaultdict(set)
    where = {}
    for base in ("include/was", "src"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, base)):
            for name in files:
                if not name.endswith((".h", ".cpp")) or name == "was.h":
                    continue
                path = os.path.join(dirpath, name)
                a = folder_of(path)
                with open(path, encoding="utf-8") as f:
                    for m in re.finditer(r'#include "was/([^"]+)"', f.read()):
                        b = os.path.dirname(m.group(1)) or "."
                        if a != b:
                            edges[a].add(b)
                            where.setdefault((a, b), os.path.relpath(path, ROOT))
    if "--print" in sys.argv:
        for a in sorted(edges):
            print(a, "->", ", ".join(sorted(edges[a])))
    problems = []
    for a, targets in edges.items():
        for b in targets:
            if a not in ORDER or b not in ORDER:
                problems.append(f"folder '{a if a not in ORDER else b}' is not in the layer order of scripts/check_layers.py "
                                "(add it there and to docs/ARCHITECTURE.md)")
            elif ORDER.index(b) > ORDER.index(a):
                problems.append(f"'{a}' includes '{b}', a layer above it ({where[(a, b)]})")
    if problems:
        for p in sorted(set(problems)):
            print("layering:", p, file=sys.stderr)
        return 1
    print(f"layering: {len(edges)} folders, every include points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
