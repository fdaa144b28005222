#!/usr/bin/env python3
"""Checks src/ against the codebase's size and shape rules: no import circle between files,
no function over 80 lines, no file over 400 lines before its tests; and the README's
architecture section names every file (a folder's `mod.rs` by the folder)."""
import glob
import re
import sys

def module_of(path):
    p = path[len("src/"):-3].split("/")
    if p[-1] in ("mod", "lib", "main"):
        p = p[:-1]
    return tuple(p)

def code_lines(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    cut = next((i for i, l in enumerate(lines) if l.strip().startswith("#[cfg(test)]")), len(lines))
    return lines[:cut]

files = sorted(glob.glob("src/**/*.rs", recursive=True))
mods = {module_of(f): f for f in files if not f.endswith("main.rs")}

def resolve(cur, path):
    """The file a `crate::`/`super::`/`self::` path leads to: its longest known module prefix."""
    parts = path.split("::")
    if parts[0] == "crate":
        base, rest = (), parts[1:]
    elif parts[0] in ("super", "self"):
        base, rest = cur, parts
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    else:
        return None
    for n in range(len(rest), -1, -1):
        if base + tuple(rest[:n]) in mods:
            return base + tuple(rest[:n])
    return None


edges = {}
problems = []
for f in files:
    if f.endswith("main.rs"):
        continue
    cur = module_of(f)
    text = "\n".join(code_lines(f))
    text = re.sub(r"//[^\n]*", "", text)
    deps = set()
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        body = re.sub(r"\s+", "", m.group(1))
        # expand one level of braces: a::{b, c::d} -> a::b, a::c::d
        stack = [body]
        while stack:
            s = stack.pop()
            b = s.find("{")
            if b < 0:
                r = resolve(cur, s)
                if r is not None:
                    deps.add(r)
                continue
            depth, end = 0, b
            for i in range(b, len(s)):
                depth += s[i] == "{"
                depth -= s[i] == "}"
                if depth == 0:
                    end = i
                    break
            prefix, inner = s[:b], s[b + 1:end]
            parts, depth, start = [], 0, 0
            for i, ch in enumerate(inner):
                depth += ch == "{"
                depth -= ch == "}"
                if ch == "," and depth == 0:
                    parts.append(inner[start:i]); start = i + 1
            parts.append(inner[start:])
            for p in parts:
                if p and p != "self":
                    stack.append(prefix + p)
                elif p == "self":
                    stack.append(prefix.rstrip(":"))
    for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", text):
        r = resolve(cur, m.group(1))
        if r is not None:
            deps.add(r)
    deps.discard(cur)
    # a folder's mod.rs declaring its children is not an import
    deps = {d for d in deps if not (d[:len(cur)] == cur and len(d) > len(cur) and mods[cur].endswith(("mod.rs", "lib.rs")))}
    # ancestors (mod.rs re-exports) count only when they are not the crate root
    edges[cur] = {d for d in deps if d != ()}

# import circles: strongly connected components of more than one file
index, low, onstack, stack, sccs, counter = {}, {}, set(), [], [], [0]
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); onstack.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in onstack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); onstack.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1:
            sccs.append(comp)
sys.setrecursionlimit(10000)
for v in list(edges):
    if v not in index:
        strong(v)
for comp in sccs:
    names = sorted(mods[c] for c in comp)
    problems.append("import circle: " + " <-> ".join(names))

for f in files:
    lines = code_lines(f)
    if len(lines) > 400:
        problems.append(f"{f}: {len(lines)} lines before its tests (at most 400)")
    i = 0
    while i < len(lines):
        if re.match(r"\s*(pub(\([^)]*\))?\s+)?(async\s+)?(unsafe\s+)?(const\s+)?(extern\s+\"C\"\s+)?fn\s+\w+", lines[i]):
            d, s, j = 0, False, i
            while j < len(lines):
                d += lines[j].count("{") - lines[j].count("}"); s = s or "{" in lines[j]
                if (s and d <= 0) or (not s and lines[j].rstrip().endswith(";")): break
                j += 1
            if s and j - i + 1 > 80:
                problems.append(f"{f}:{i+1}: a function of {j-i+1} lines (at most 80)")
            i = j + 1 if s else i + 1
        else:
            i += 1

readme = open("README.md", encoding="utf-8").read()
if "\n## Architecture\n" not in readme:
    problems.append("README.md: no Architecture section")
architecture = readme.split("\n## Architecture\n", 1)[-1].split("\n## ", 1)[0]
for f in files:
    parts = f.split("/")
    name = parts[-2] + "/" if parts[-1] == "mod.rs" else parts[-1]
    if name not in architecture:
        problems.append(f"{f}: not named in README.md's Architecture section ({name})")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
