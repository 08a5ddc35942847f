// Types of roomgate-client's public API. The behaviour behind each is in README.md.

/** A user as the room names them: `id` from the verified token's `sub`, `name` for display. */
export interface User {
  readonly id: string;
  readonly name: string;
}

/** One published message. `data` is the publisher's JSON value, byte for byte as sent. */
export interface Message<T = unknown> {
  /** 1 for the room's first message, +1 for each next one; never reused. */
  readonly seq: number;
  readonly from: User;
  readonly data: T;
  /** When the room sequenced it, unix milliseconds. */
  readonly ts: number;
}

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export interface Welcome {
  readonly room: string;
  readonly user: User;
  /** Everyone visible in the room, in order of arrival; empty in a room without presence. */
  readonly members: readonly User[];
  /** The socket's token expiry, unix seconds; `null` if the server sent none. */
  readonly expiresAt: number | null;
  /** The room's latest `seq` when this socket arrived. */
  readonly lastSeq: number;
}

export interface Presence {
  readonly joined: readonly User[];
  readonly left: readonly User[];
}

/** Messages `from` to `to` (inclusive) were missed and are no longer kept by the room. */
export interface Gap {
  readonly from: number;
  readonly to: number;
}

export interface Expiry {
  /** Unix seconds; `null` if the server sent none. */
  readonly expiresAt: number | null;
}

export interface CloseInfo {
  /** The WebSocket close code; `null` when the attempt ended before a socket existed. */
  readonly code: number | null;
  readonly reason: string;
  /** `true`: another attempt follows after `delayMs`. `false`: the client is now closed. */
  readonly willRetry: boolean;
  readonly delayMs: number | null;
  readonly error: RoomError;
}

export interface RoomEvents<T = unknown> {
  state: ConnectionState;
  welcome: Welcome;
  members: ReadonlyMap<string, User>;
  presence: Presence;
  message: Message<T>;
  gap: Gap;
  expiring: Expiry;
  refreshed: Expiry;
  close: CloseInfo;
  error: RoomError;
}

export interface TokenContext {
  /** `"connect"`: for a new socket. `"refresh"`: the current socket's token expires soon. */
  readonly reason: "connect" | "refresh";
  readonly room: string;
}

/**
 * A token, or a function giving one. Returning `null`, `undefined` or `""` on connect
 * closes the client (`no_token`); on refresh it sends no refresh.
 */
export type TokenProvider =
  | string
  | ((context: TokenContext) => string | null | undefined | Promise<string | null | undefined>);

// Handler properties are declared as methods so that the DOM's and the `ws` package's
// sockets, whose handlers take their own event classes, are assignable.
type Handler<E> = { bivarianceHack(event: E): void }["bivarianceHack"];

/** The part of a WebSocket the client uses: the DOM's, the `ws` package's, Deno's, Workers'. */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType?: string;
  onmessage: Handler<{ readonly data: unknown }> | null;
  onclose: Handler<{ readonly code: number; readonly reason: string }> | null;
  onerror: Handler<unknown> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

export interface ResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  json(): Promise<unknown>;
}

export type FetchLike = (
  url: string,
  init: { method: "POST"; headers: Record<string, string>; body: string },
) => Promise<ResponseLike>;

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RoomClientOptions {
  /** The roomgate Worker's base URL: `http(s)://` or `ws(s)://`, optionally with a path prefix. */
  url: string;
  /** The room name, `^[A-Za-z0-9_.-]{1,64}$`. */
  room: string;
  token: TokenProvider;
  /** Default `"subprotocol"` (the token in `Sec-WebSocket-Protocol`); `"ticket"`: POST /ws-ticket per connection. */
  transport?: "subprotocol" | "ticket";
  /** Where tickets come from. Default: `<url>/ws-ticket`; a path is taken on the server's origin. */
  ticketUrl?: string;
  /** Resume point for the first connection: replay what came after this `seq`. */
  since?: number;
  backoff?: { initialMs?: number; maxMs?: number };
  /** Ping a socket that has been quiet this long. Default 30000; 0 turns pings off. */
  pingIntervalMs?: number;
  /** How long to wait for the welcome, and for any frame after a ping. Default 15000. */
  timeoutMs?: number;
  /** The server's `MAX_FRAME_BYTES`. Default 16384. */
  maxFrameBytes?: number;
  /** Default: the global `WebSocket`. In Node before 22: `WebSocket` from the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** Default: the global `fetch`. Used by the ticket transport only. */
  fetch?: FetchLike;
  /** Default: the global `setTimeout` and `clearTimeout`. */
  timers?: Timers;
  /** Default: `Math.random`. Spreads reconnects (the backoff's jitter). */
  random?: () => number;
}

export interface HistoryOptions {
  /** Only messages with `seq` below this. Absent: from the newest. */
  before?: number;
  /** 1 to 100; the server's default is 50. */
  limit?: number;
}

/**
 * An error with a stable, machine-readable `code`: an `error` frame's code, an HTTP error
 * body's `error`, or one of the client's own (README, "Errors").
 */
export class RoomError extends Error {
  constructor(code: string, message: string, details?: { status?: number; closeCode?: number; cause?: unknown });
  readonly name: "RoomError";
  readonly code: string;
  /** The HTTP status, for a refused ticket or upgrade. */
  readonly status?: number;
  /** The WebSocket close code, for a closed connection. */
  readonly closeCode?: number;
}

/** One room, connected for as long as the client lives. `T` is the type of message data. */
export class RoomClient<T = unknown> {
  /** Starts connecting at once. Throws a TypeError for invalid options. */
  constructor(options: RoomClientOptions);

  readonly name: string;
  readonly state: ConnectionState;
  /** The room's members by user id, as of the last welcome and presence; empty while not open. */
  readonly members: ReadonlyMap<string, User>;
  /** Who this client is in the room, from the last welcome; `null` before the first. */
  readonly me: User | null;
  /** The last `seq` delivered (or skipped by a gap): the resume point. */
  readonly lastSeq: number;
  readonly expiresAt: number | null;

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof RoomEvents<T>>(event: K, listener: (value: RoomEvents<T>[K]) => void): () => void;
  off<K extends keyof RoomEvents<T>>(event: K, listener: (value: RoomEvents<T>[K]) => void): void;

  /** Resolves with the message's `seq` once the room has sequenced and stored it. */
  publish(data: T): Promise<number>;
  /** One page of kept messages, oldest first. */
  history(options?: HistoryOptions): Promise<Message<T>[]>;
  /** Pages from `before` (absent: the newest) back to the oldest kept message, newest page first. */
  historyPages(options?: HistoryOptions): AsyncGenerator<Message<T>[], void, undefined>;
  /** Closes the socket, stops reconnecting and clears every timer. */
  close(): void;
}
