// Compiled (never run) by test/types.test.js: the shipped index.d.ts must
// type this ordinary use of the client, and reject the misuses at the end.

import {
  Client, Subscription, WsgateError, ConnectionError, ErrorCode, Backoff, closeAction,
  type LostEvent, type Publication, type PublishResult, type ClientState,
} from "wsgate-client";

const client = new Client("ws://127.0.0.1:8080/ws", {
  encoding: "json",
  dataFormat: "json",
  token: async ({ reason }) => (reason === "refresh" ? "t2" : "t1"),
  backoff: { min: 100, max: 5000, healthyAfter: 10000 },
  pingInterval: 25000,
});

const off: () => void = client.on("connecting", (e) => {
  const d: number = e.delay;
  const a: number = e.attempt;
  void d, a;
});
off();
client.on("disconnected", (e) => {
  if (e.error instanceof ConnectionError) console.log(e.error.code, e.error.status);
});
client.on("state", (e) => {
  const s: ClientState = e.state;
  void s;
});

interface ChatLine { name: string; text: string }
const sub: Subscription<ChatLine> = client.subscribe<ChatLine>("chat:room1", { offset: 3, epoch: "xq3" });
sub.on("message", (p: Publication<ChatLine>) => console.log(p.offset, p.data.text));
sub.on("lost", (e: LostEvent) => {
  if (e.kind === "gap") console.log(e.from, e.to);
  else console.log(e.epoch, e.previous);
});
client.connect();

async function use(): Promise<void> {
  const info = await sub.ready();
  const recovered: boolean = info.recovered;
  const r: PublishResult = await client.publish("chat:room1", { name: "a", text: "hi" }, { idempotencyKey: "k" });
  const replayed: boolean = r.replayed;
  const h = await sub.history({ limit: 10, reverse: true });
  const first: ChatLine | undefined = h.publications[0]?.data;
  const stats = await client.presenceStats("chat:room1");
  const n: number = stats.clients + stats.users;
  const rtt: number = await client.ping();
  void recovered, replayed, first, n, rtt;
  try {
    await client.publish("c", 1);
  } catch (err) {
    if (err instanceof WsgateError && err.code === ErrorCode.OutcomeUnknown && err.temporary) console.log("retry");
  }
  const b = new Backoff({ min: 1 });
  const delay: number = b.next(0);
  const stop: boolean = !closeAction(4501).reconnect;
  void delay, stop;
  await sub.unsubscribe();
  client.close();
}
void use;

// @ts-expect-error: not an encoding
new Client("ws://x", { encoding: "protobuf" });
// @ts-expect-error: not an event of a client
client.on("message", () => {});
// @ts-expect-error: gap events have no "previous"
sub.on("lost", (e) => e.kind === "gap" && e.previous);
