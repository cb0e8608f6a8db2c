#!/usr/bin/env python3
"""List the import cycles between the files of one module tree.

Usage: scripts/module_cycles.py [--max-files N] [src/node ...]

Every `super::...`, `self::...` and `crate::...` path in a file (in `use` items and in
expressions) is resolved to the file module it names; an edge A -> B means file A refers
to something in file B. Each strongly connected group of two or more files is a cycle:
the script prints its files and the edges inside it, and exits 1 when it found any (with
`--max-files N`: only when a cycle has more than N files).
"""
import os
import re
import sys

PATH_RE = re.compile(r"\b((?:crate|super|self)(?:::(?:super|[A-Za-z_][A-Za-z0-9_]*))+)")
USE_GROUP_RE = re.compile(r"\buse\s+((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)
COMMENT_RE = re.compile(r"//[^\n]*")


def module_path(root_src, path):
    """`src/node/indexes/find.rs` -> ['node', 'indexes', 'find']."""
    rel = os.path.relpath(path, root_src)[: -len(".rs")].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel


def resolve(here, parts):
    """Resolve a `super::`/`crate::`/`self::` path seen in module `here`."""
    out = list(here)
    first = True
    rest = []
    for p in parts:
        if first and p == "crate":
            out = []
        elif p == "super" and not rest:
            out = out[:-1]
        elif p == "self" and not rest:
            pass
        else:
            rest.append(p)
        first = False
    return out + rest


def main():
    args = sys.argv[1:]
    max_files = 1
    if args[:1] == ["--max-files"]:
        max_files = int(args[1])
        args = args[2:]
    roots = args or ["src/node"]
    src = "src"
    files = {}
    for root in roots:
        for d, _, names in os.walk(root):
            for n in names:
                if n.endswith(".rs"):
                    p = os.path.join(d, n)
                    files[tuple(module_path(src, p))] = p
    edges = {m: set() for m in files}
    for mod, path in files.items():
        text = COMMENT_RE.sub("", open(path, encoding="utf-8").read())
        # In `mod.rs` a bare `super::` is the parent of the directory module.
        here = list(mod)
        paths = [m.group(1).split("::") for m in PATH_RE.finditer(text)]
        for g in USE_GROUP_RE.finditer(text):
            base = g.group(1).split("::")
            for item in re.split(r",\s*", g.group(2)):
                head = item.strip().split("::")[0].split(" ")[0]
                if head and head != "self" and re.match(r"[A-Za-z_]", head):
                    paths.append(base + [head])
        for parts in paths:
            target = resolve(here, parts)
            # The longest prefix that is a file of the tree.
            for k in range(len(target), 0, -1):
                t = tuple(target[:k])
                if t in files:
                    if t != mod and not mod[: len(t)] == t:
                        edges[mod].add(t)
                    break
    cycles = sccs(edges)
    name = lambda m: os.path.relpath(files[m], src)
    if not cycles:
        print(f"no import cycles among {len(files)} files")
        return 0
    for i, c in enumerate(sorted(cycles, key=len, reverse=True), 1):
        members = sorted(name(m) for m in c)
        print(f"cycle {i}: {len(c)} files: {' '.join(members)}")
        for m in sorted(c):
            inside = sorted(name(t) for t in edges[m] if t in c)
            print(f"  {name(m)} -> {', '.join(inside)}")
    largest = max(len(c) for c in cycles)
    if largest > max_files:
        print(f"a cycle of {largest} files: more than {max_files}")
        return 1
    return 0


def sccs(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
