// Shared by the integration tests: they run under node_test.go, which
// starts the gateways and passes their URLs and a control endpoint in the
// environment.

export const env = process.env;

export function need(name) {
  const v = env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through go test (gateway/client/js/node_test.go)`);
  return v;
}

/** Asks node_test.go to kill / term / restart a gateway; resolves when done. */
export async function control(op, name) {
  const r = await fetch(`${need("WSGATE_CONTROL")}/${op}/${name}`, { method: "POST" });
  if (!r.ok) throw new Error(`control ${op} ${name}: ${r.status} ${await r.text()}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls cond until it holds, for at most ms; what() describes the state on timeout. */
export async function waitFor(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what()}`);
    await sleep(10);
  }
}

export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
