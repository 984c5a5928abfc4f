#!/usr/bin/env python3
"""func_lengths.py [--max N] [--top K] DIR...: lengths of the C functions under DIRs.

Prints the longest functions, the count over N lines and the largest file; with
--max N exits 1 when a function is longer than N lines (a function's lines run
from its signature's first line to its closing brace)."""
import argparse
import os
import re
import sys

SIG = re.compile(r'^[A-Za-z_][\w\s\*]*\b(\w+)\s*\([^;]*$')


def functions(path):
    lines = open(path, encoding='utf-8', errors='replace').read().split('\n')
    out, i = [], 0
    while i < len(lines):
        m = SIG.match(lines[i])
        if m and not lines[i].startswith(('static inline', 'typedef', 'return', 'else', 'if', 'for', 'while')):
            j = i  # the signature may span lines up to the opening brace
            while j < len(lines) and '{' not in lines[j] and ';' not in lines[j]:
                j += 1
            if j < len(lines) and '{' in lines[j] and ';' not in lines[j].split('{')[0]:
                depth, k = 0, j
                while k < len(lines):
                    depth += lines[k].count('{') - lines[k].count('}')
                    if depth == 0:
                        break
                    k += 1
                out.append((k - i + 1, m.group(1), path, i + 1))
                i = k + 1
                continue
        i += 1
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--max', type=int, default=0)
    ap.add_argument('--top', type=int, default=5)
    ap.add_argument('dirs', nargs='+')
    a = ap.parse_args()
    funcs, files = [], []
    for d in a.dirs:
        for root, _, names in os.walk(d):
            for n in sorted(names):
                if n.endswith('.c'):
                    p = os.path.join(root, n)
                    funcs += functions(p)
                    files.append((sum(1 for _ in open(p, encoding='utf-8', errors='replace')), p))
    funcs.sort(reverse=True)
    for length, name, path, line in funcs[:a.top]:
        print(f'{length:5d}  {name}  {path}:{line}')
    limit = a.max or 80
    over = [f for f in funcs if f[0] > limit]
    files.sort(reverse=True)
    print(f'functions: {len(funcs)}, over {limit} lines: {len(over)}; largest file: {files[0][1]} ({files[0][0]} lines)')
    if a.max and over:
        for length, name, path, line in over:
            print(f'too long: {name} ({path}:{line}) has {length} lines, the limit is {a.max}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
