// Type declarations of wsgate-client (the implementation is plain ESM in src/).

/** A WebSocket class: the browser's, Node's global one, or the `ws` package's. */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[], options?: unknown): WebSocketLike;
}

/** What the client uses of a WebSocket. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (ev: any) => void): void;
}

export interface BackoffOptions {
  /** ms: the first reconnect window (default 500). */
  min?: number;
  /** ms: the largest window (default 20000). */
  max?: number;
  /** Window growth per attempt (default 2). */
  factor?: number;
  /** ms connected after which the attempt count starts again (default 10000). */
  healthyAfter?: number;
  /** ms added to the delay after close 4008 or 4029, or a 429/503 without Retry-After (default 5000). */
  throttled?: number;
  /** ms: the most a handshake's Retry-After may add (default 300000). */
  maxRetryAfter?: number;
}

export type TokenReason = "connect" | "reconnect" | "expired" | "refresh";

/** Returns the connection token; called before every connection attempt and on the server's refresh push. */
export type TokenSource = (ctx: { reason: TokenReason }) => string | null | undefined | Promise<string | null | undefined>;

export interface ClientOptions {
  /** Wire encoding (default "msgpack", which loads @msgpack/msgpack on first use). */
  encoding?: "msgpack" | "json";
  /**
   * How publication data looks to the application (default "raw"):
   * - "raw": msgpack → Uint8Array in, Uint8Array | string out; json → JSON values (Uint8Array when the server sent b64).
   * - "json": JSON values in and out with either encoding (msgpack carries them as JSON text bytes);
   *   data that is not JSON text arrives as a Uint8Array.
   */
  dataFormat?: "raw" | "json";
  /** Connection token (sent as ?token=), or a function returning one. */
  token?: string | TokenSource;
  /** The WebSocket class; default globalThis.WebSocket, else the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** Third argument of the WebSocket constructor (the `ws` package: headers, agent, …). */
  wsOptions?: unknown;
  /** An already loaded @msgpack/msgpack (or any {encode, decode} like it). */
  msgpack?: { encode(value: unknown, options?: unknown): Uint8Array; decode(data: ArrayLike<number> | BufferSource): unknown };
  backoff?: BackoffOptions;
  /** ms without any frame before the client sends a protocol ping (default 25000; 0: never). */
  pingInterval?: number;
  /** ms to wait for any frame after that ping before the connection counts as dead (default 10000). */
  pongTimeout?: number;
  /** ms for the WebSocket handshake (default 10000). */
  connectTimeout?: number;
  /** ms for a command, including waiting for a connection (default 10000). */
  commandTimeout?: number;
  /** Uniform random numbers in [0, 1) for the jitter of reconnects and retries (tests). */
  random?: () => number;
}

export type ClientState = "disconnected" | "connecting" | "connected";

export interface ConnectingEvent {
  /** Close code of the connection that was lost (0 for the first connect). */
  code: number;
  reason: string;
  /** ms until the attempt. */
  delay: number;
  /** Attempts since the last healthy connection. */
  attempt: number;
  /** HTTP status of a refused handshake, when visible (the ws package only). */
  status?: number;
}

export interface ConnectedEvent {
  protocol: string;
}

export interface DisconnectedEvent {
  code: number;
  reason: string;
  /** Why the client stopped for good; null after close(). */
  error: ConnectionError | null;
}

export type StateEvent = { state: ClientState; previous: ClientState } & Partial<ConnectingEvent & ConnectedEvent & DisconnectedEvent>;

export interface ClientEvents {
  /**
   * Every state change, in order, before the state's own event. A handler's close() or
   * connect() changes the state at once; its events come after the current event has
   * reached every listener.
   */
  state: StateEvent;
  connecting: ConnectingEvent;
  connected: ConnectedEvent;
  disconnected: DisconnectedEvent;
  /** Something went wrong that does not stop the client (a failed refresh, an undecodable frame). */
  error: Error;
  /** A refresh command was accepted. */
  refreshed: {};
}

export interface Publication<T = any> {
  channel: string;
  /** Position in the channel's history (0: the channel keeps none). */
  offset: number;
  epoch: string;
  data: T;
}

export interface SubscribedEvent {
  channel: string;
  /** The channel's top offset when subscribed. */
  offset: number;
  epoch: string;
  /** Whether the subscribe carried a resume position. */
  resumed: boolean;
  /** With resumed: whether everything missed is being replayed. */
  recovered: boolean;
  reason: string;
}

/**
 * Publications the application will not get: it should reload the channel's state.
 * - "unrecovered": a resume was answered recovered:false (or could not be tried);
 * - "epoch": the channel's history was lost and offsets started again;
 * - "gap": publications from..to were lost on the way.
 */
export type LostEvent =
  | { kind: "unrecovered"; channel: string; reason: string; epoch: string; previous: string; offset: number }
  | { kind: "epoch"; channel: string; epoch: string; previous: string; offset: number }
  | { kind: "gap"; channel: string; from: number; to: number; epoch: string };

export interface PresenceEvent {
  channel: string;
  client: string;
  user: string;
}

export interface SubscriptionEvents<T = any> {
  message: Publication<T>;
  subscribed: SubscribedEvent;
  subscribing: { channel: string; reason: string };
  unsubscribed: { channel: string; reason: string; error?: Error };
  lost: LostEvent;
  join: PresenceEvent;
  leave: PresenceEvent;
  error: WsgateError;
}

export declare class Emitter<E> {
  on<K extends keyof E & string>(event: K, fn: (arg: E[K]) => void): () => void;
  once<K extends keyof E & string>(event: K, fn: (arg: E[K]) => void): () => void;
  off<K extends keyof E & string>(event: K, fn: (arg: E[K]) => void): void;
  listenerCount(event: keyof E & string): number;
}

export interface SubscribeOptions {
  /** Start position (e.g. persisted by the application): both or neither. */
  offset?: number;
  epoch?: string;
  /** Subscription token, or a function returning one (called on every subscribe; if it throws or rejects, the subscription fails). */
  token?: string | ((channel: string) => string | Promise<string>);
}

export interface CommandOptions {
  /** ms; default: the client's commandTimeout. */
  timeout?: number;
}

export interface PublishOptions extends CommandOptions {
  /** Makes the publish safe to retry: the client retries it by itself; the gateway publishes it at most once. */
  idempotencyKey?: string;
}

export interface PublishResult {
  offset: number;
  epoch: string;
  /** The key had already published it: offset and epoch are the first publish's. */
  replayed: boolean;
}

export interface HistoryOptions extends CommandOptions {
  offset?: number;
  epoch?: string;
  limit?: number;
  reverse?: boolean;
}

export interface HistoryResult<T = any> {
  publications: { offset: number; data: T }[];
  epoch: string;
}

export declare class Client extends Emitter<ClientEvents> {
  constructor(url: string, options?: ClientOptions);
  readonly state: ClientState;
  readonly encoding: "msgpack" | "json";
  connect(): void;
  close(): void;
  subscribe<T = any>(channel: string, options?: SubscribeOptions): Subscription<T>;
  getSubscription(channel: string): Subscription | undefined;
  subscriptions(): Subscription[];
  /** Sends a copy of data taken at the call (a retry sends the same); data the encoding cannot carry rejects with a TypeError. */
  publish(channel: string, data: unknown, options?: PublishOptions): Promise<PublishResult>;
  history<T = any>(channel: string, options?: HistoryOptions): Promise<HistoryResult<T>>;
  presence(channel: string, options?: CommandOptions): Promise<{ clients: { client: string; user: string }[] }>;
  presenceStats(channel: string, options?: CommandOptions): Promise<{ clients: number; users: number }>;
  /** A protocol round trip; resolves with its duration in ms. */
  ping(options?: CommandOptions): Promise<number>;
}

export declare class Subscription<T = any> extends Emitter<SubscriptionEvents<T>> {
  readonly channel: string;
  readonly state: "subscribing" | "subscribed" | "unsubscribed" | "failed";
  /** Publications dropped as already delivered (resume seams, repairs). */
  readonly duplicates: number;
  /** The last publication delivered and its epoch: where a resume starts. */
  readonly position: { offset: number; epoch: string };
  /** Resolves on the first subscribe reply; rejects if the subscription fails or is unsubscribed first. */
  ready(): Promise<SubscribedEvent>;
  unsubscribe(): Promise<void>;
  publish(data: unknown, options?: PublishOptions): Promise<PublishResult>;
  history(options?: HistoryOptions): Promise<HistoryResult<T>>;
  presence(): Promise<{ clients: { client: string; user: string }[] }>;
  presenceStats(): Promise<{ clients: number; users: number }>;
}

export declare const ErrorCode: {
  readonly Timeout: 1;
  readonly Closed: 2;
  readonly Disconnected: 3;
  readonly BadRequest: 100;
  readonly UnknownCommand: 101;
  readonly BadChannel: 102;
  readonly TooManyChannels: 103;
  readonly AlreadySubscribed: 104;
  readonly NotSubscribed: 105;
  readonly PayloadTooLarge: 106;
  readonly RateLimited: 107;
  readonly PermissionDenied: 108;
  readonly Unauthorized: 109;
  readonly NotAvailable: 110;
  readonly Internal: 111;
  readonly Unrecoverable: 112;
  readonly OutcomeUnknown: 113;
  readonly IdempotencyKeyReused: 114;
};

/** A command's failure: a protocol error code (100–114) or a client one (1–3). */
export declare class WsgateError extends Error {
  constructor(code: number, message: string, options?: { cause?: unknown });
  readonly code: number;
  /** 107, 111, 113 and timeouts: retrying after a pause may succeed. */
  readonly temporary: boolean;
}

/** Why the client stopped for good. */
export declare class ConnectionError extends Error {
  constructor(message: string, options?: { code?: number; status?: number; cause?: unknown });
  /** The close code (0 when none). */
  readonly code: number;
  /** The HTTP status of a refused handshake (0 when unknown). */
  readonly status: number;
}

export interface CloseAction {
  reconnect: boolean;
  newToken: boolean;
  throttled: boolean;
}

/** The client's reaction to a close code (codec/README.md §8). */
export declare function closeAction(code: number): CloseAction;
/** The client's reaction to a refused handshake's HTTP status. */
export declare function handshakeAction(status: number): CloseAction;

export declare const defaultBackoff: Readonly<Required<BackoffOptions>>;

/** Exponential backoff with full jitter. */
export declare class Backoff {
  constructor(options?: BackoffOptions, random?: () => number);
  readonly options: Readonly<Required<BackoffOptions>>;
  readonly attempt: number;
  window(): number;
  next(floor?: number): number;
  reset(): void;
}

export declare const PROTOCOL_JSON: "wsgate.v1.json";
export declare const PROTOCOL_MSGPACK: "wsgate.v1.msgpack";
