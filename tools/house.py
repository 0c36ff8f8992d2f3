#!/usr/bin/env python3
"""The house's shape, measured: import cycles between top-level modules and between files,
functions over 80 lines, and process-wide mutable statics.

Usage: python3 tools/house.py [--check]   (from the repository root)

Every `crate::a::b` path in a file under src/ is an arrow from that file to the module it
names (test code included: a `mod tests` needs what it imports too). Top-level modules are the
first segment (`config`, `store`, ...); files are resolved to the longest module path that
exists. With --check it exits 1 when there is a cycle or a non-test function over 80 lines,
so CI keeps the house in shape.
"""
import os
import re
import sys

SRC = "src"
MAX_LINES = 80


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3]
    parts = rel.split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def files():
    for root, _, names in os.walk(SRC):
        for n in sorted(names):
            if n.endswith(".rs"):
                yield os.path.join(root, n)


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


PATH_RE = re.compile(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)")
USE_GROUP_RE = re.compile(r"\buse\s+crate::([a-z0-9_:]*)\{([^;]*)\};", re.S)
SUPER_RE = re.compile(r"\bsuper::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)")


def targets(path, modules):
    """The modules a file refers to."""
    text = strip_comments(open(path, encoding="utf-8").read())
    me = module_of(path)
    found = set()
    paths = set(PATH_RE.findall(text))
    for prefix, group in USE_GROUP_RE.findall(text):
        for item in re.split(r"[,\s]+", group):
            item = item.strip().split(" as ")[0].strip("{} ")
            if item and item != "self":
                paths.add(prefix + item)
            elif item == "self":
                paths.add(prefix.rstrip(":"))
    # `super::x` from a file: relative to its parent module (a mod.rs is its own module).
    is_mod = os.path.basename(path) in ("mod.rs", "lib.rs")
    parent = me if is_mod else me[:-1]
    for p in SUPER_RE.findall(text):
        base = parent[:-1] if is_mod else parent
        paths.add("::".join(base + tuple(p.split("::"))))
    for p in paths:
        segs = tuple(s for s in p.split("::") if s)
        # The longest prefix that is a module file.
        for k in range(len(segs), 0, -1):
            if segs[:k] in modules:
                if segs[:k] != me:
                    found.add(segs[:k])
                break
    return found


def cycles(graph):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


FN_RE = re.compile(r"^(\s*)(?:pub(?:\([a-z]+\))?\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+([a-z_0-9]+)")


def long_functions(path):
    """Non-test functions over MAX_LINES lines: (name, lines)."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out = []
    in_tests_from = None
    for i, line in enumerate(lines):
        if re.match(r"^\s*#\[cfg\(test\)\]", line):
            in_tests_from = i
        m = FN_RE.match(line)
        if not m:
            continue
        indent = m.group(1)
        # A test function, or a function inside a `mod tests`: not counted.
        prev = "\n".join(lines[max(0, i - 3):i])
        if "#[test]" in prev or "#[tokio::test" in prev:
            continue
        if in_tests_from is not None and indent and i > in_tests_from:
            continue
        # The end: the first line after the signature that closes at the same indent.
        for j in range(i + 1, len(lines)):
            if lines[j].startswith(indent + "}") and not lines[j].startswith(indent + "} else"):
                n = j - i + 1
                if n > MAX_LINES:
                    out.append((m.group(2), n, i + 1))
                break
            if lines[j].rstrip().endswith(";") and j == i:
                break
    return out


MUT_STATIC_RE = re.compile(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?static\s+([A-Z_0-9]+)\s*:\s*([^=]+)=", re.M)
MUTABLE_HINTS = ("Mutex", "RwLock", "Atomic", "OnceLock", "OnceCell", "LazyLock", "Lazy", "Notify", "Cell")


def statics(path):
    text = open(path, encoding="utf-8").read()
    out = []
    for m in MUT_STATIC_RE.finditer(text):
        if any(h in m.group(2) for h in MUTABLE_HINTS):
            line = text[: m.start()].count("\n") + 1
            # The reason: the comment lines right above it.
            above = text[: m.start()].rstrip("\n").split("\n")
            why = []
            for a in reversed(above):
                if a.strip().startswith("///") or a.strip().startswith("//"):
                    why.insert(0, a.strip().lstrip("/").strip())
                else:
                    break
            out.append((m.group(1), line, " ".join(why)))
    return out


def main():
    check = "--check" in sys.argv
    paths = list(files())
    modules = {module_of(p) for p in paths}
    file_graph, top_graph = {}, {}
    for p in paths:
        me = module_of(p)
        ts = targets(p, modules)
        file_graph[me] = ts
        if me:
            top = me[0]
            for t in ts:
                if t and t[0] != top:
                    top_graph.setdefault(top, set()).add(t[0])
    top_cycles = cycles(top_graph)
    file_cycles = cycles(file_graph)
    longs = [(p, n, k, line) for p in paths for (n, k, line) in long_functions(p)]
    bad = False
    print(f"top-level modules: {len({m[0] for m in modules if m})}")
    if top_cycles:
        bad = True
        for c in top_cycles:
            print(f"cycle between top-level modules ({len(c)}): {' '.join(c)}")
    else:
        print("no cycle between top-level modules")
    if file_cycles:
        bad = True
        for c in file_cycles:
            print(f"cycle between files ({len(c)}): {' '.join('::'.join(m) or 'crate' for m in c)}")
    else:
        print("no cycle between files")
    if longs:
        bad = True
        for p, n, k, line in sorted(longs, key=lambda x: -x[2]):
            print(f"function over {MAX_LINES} lines: {p}:{line} {n} ({k} lines)")
    else:
        print(f"no non-test function over {MAX_LINES} lines")
    print("process-wide mutable statics:")
    for p in paths:
        for name, line, why in statics(p):
            print(f"  {p}:{line} {name}: {why or '(no reason given)'}")
            if not why:
                bad = True
    if check and bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
