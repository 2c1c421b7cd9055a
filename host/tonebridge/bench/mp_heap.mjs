// Live-heap high-water of firmware code under the MicroPython WebAssembly port.
//
// usage: node mp_heap.mjs FIRMWARE_DIR < job.json
// job.json: {"setup": code, "step": code, "finish": code}
//
// The WebAssembly port cannot scan its own C stack, so gc.collect() inside Python only
// marks a collection as pending; it runs when control is back at the top level (between
// runPython calls). So each phase runs as its own runPython call, then gc.collect() runs
// at the top level, then gc.mem_alloc() is read: that is the live heap between phases.
// "setup" runs once, "step" repeatedly until the Python global DONE is true, "finish" once.
// Prints one JSON line: {"samples": [live heap after setup, after each step...], ...}.
import fs from "node:fs";
import path from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const fwDir = process.argv[2];
const job = JSON.parse(fs.readFileSync(0, "utf8"));
const out = (fd) => (bytes) => fs.writeSync(fd, bytes);
const mp = await loadMicroPython({ heapsize: 1024 * 1024, linebuffer: false, stdout: out(1), stderr: out(2) });

function copyTree(hostDir, mpDir) {
  mp.FS.mkdirTree(mpDir);
  for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (entry.name === "__pycache__" || entry.name.startsWith(".")) continue;
    const src = path.join(hostDir, entry.name);
    const dst = mpDir + "/" + entry.name;
    if (entry.isDirectory()) copyTree(src, dst);
    else if (entry.name.endsWith(".py")) mp.FS.writeFile(dst, fs.readFileSync(src));
  }
}
copyTree(fwDir, "/lib");

function live() {
  mp.runPython("gc.collect()"); // pending: runs as this call returns to the top level
  mp.runPython("__live = gc.mem_alloc()");
  return mp.globals.get("__live");
}

const samples = [];
try {
  mp.runPython("import gc, sys\nsys.path.insert(0, '/lib')\n__live = 0\nDONE = False");
  samples.push(live()); // baseline
  mp.runPython(job.setup);
  samples.push(live());
  let steps = 0;
  while (!mp.globals.get("DONE")) {
    mp.runPython(job.step);
    samples.push(live());
    if (++steps > 100000) throw new Error("step never set DONE");
  }
  mp.runPython(job.finish);
  const result = mp.globals.get("RESULT");
  process.stdout.write(JSON.stringify({ samples, result: JSON.parse(result) }) + "\n");
} catch (e) {
  console.error(`mp_heap: ${e.message}`);
  process.exit(1);
}
