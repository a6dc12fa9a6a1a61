#!/usr/bin/env python3
"""The longest functions under the given folders (a brace-counting estimate: a
function starts at a line ending in "{" at column 0). Usage: scripts/function_lengths.py tools [src]"""
import re,sys,pathlib
res=[]
for p in sys.argv[1:]:
    for f in pathlib.Path(p).rglob('*.cpp'):
        lines=f.read_text().split('\n')
        i=0
        while i<len(lines):
            l=lines[i]
            if l.endswith('{') and not l.startswith((' ','}','namespace','struct','class','enum','#','extern')) and '(' in ''.join(lines[max(0,i-3):i+1]):
                depth=0;j=i
                while j<len(lines):
                    depth+=lines[j].count('{')-lines[j].count('}')
                    if depth==0: break
                    j+=1
                # find name
                k=i
                while k>0 and '(' not in lines[k]: k-=1
                name=lines[k].split('(')[0].split()[-1] if lines[k].split('(')[0].split() else lines[k]
                res.append((j-i+1,str(f),name))
                i=j
            i+=1
for n,f,name in sorted(res,reverse=True)[:25]: print(n,f,name)
