// Run Python code under the real MicroPython WebAssembly port (Node).
//
// usage: node mp_run.mjs [--mount HOSTDIR:MPDIR]... [--heap BYTES] < code.py
// Every *.py file under HOSTDIR is copied into MicroPython's filesystem at MPDIR.
// stdout/stderr of MicroPython go to this process's stdout/stderr unbuffered.
// Exit status: 0 when the code ran to the end, 1 when it raised (the MicroPython
// traceback is printed on stderr), 2 on a usage or set-up error.
import fs from "node:fs";
import path from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const args = process.argv.slice(2);
const mounts = [];
let heap = 8 * 1024 * 1024;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--mount") mounts.push(args[++i]);
  else if (args[i] === "--heap") heap = parseInt(args[++i], 10);
  else { console.error(`mp_run: unknown argument ${args[i]}`); process.exit(2); }
}

const code = fs.readFileSync(0, "utf8");
const out = (fd) => (bytes) => fs.writeSync(fd, bytes);
const mp = await loadMicroPython({ heapsize: heap, linebuffer: false, stdout: out(1), stderr: out(2) });

function copyTree(hostDir, mpDir) {
  mp.FS.mkdirTree(mpDir);
  for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (entry.name === "__pycache__" || entry.name.startsWith(".")) continue;
    const src = path.join(hostDir, entry.name);
    const dst = mpDir + "/" + entry.name;
    if (entry.isDirectory()) copyTree(src, dst);
    else if (entry.name.endsWith(".py") || entry.name.endsWith(".json")) mp.FS.writeFile(dst, fs.readFileSync(src));
  }
}
for (const m of mounts) {
  const at = m.lastIndexOf(":");
  if (at < 0) { console.error(`mp_run: bad --mount ${m}`); process.exit(2); }
  copyTree(m.slice(0, at), m.slice(at + 1));
}

// Wrap the code so an uncaught exception prints a MicroPython traceback and sets the status.
mp.globals.set("__tb_src", code);
const wrapper = `
import sys
__tb_ok = False
try:
    exec(__tb_src, {"__name__": "__main__"})
    __tb_ok = True
except BaseException as e:
    sys.print_exception(e, sys.stderr)
`;
try {
  mp.runPython(wrapper);
} catch (e) {
  console.error(`mp_run: MicroPython aborted: ${e.message}`);
  process.exit(1);
}
process.exit(mp.globals.get("__tb_ok") ? 0 : 1);
