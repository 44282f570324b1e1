// Realtime client for Standin's WebSocket endpoint (/ws, same origin).
//
// Protocol (PRODUCT.md, section 8): after the socket opens the client sends
// {"type":"subscribe","topic":T,"after_seq":N} for every topic it follows;
// the server answers {"type":"subscribed"} or {"type":"error"}, then sends
// {"type":"event","topic":T,"event":{...}} messages: first the events it
// missed after N, then live ones. A text frame may carry several messages,
// one JSON object per line.
//
// The client remembers the last seq seen per topic, drops anything at or
// below it (so a replay never delivers a duplicate), and after a dropped
// connection reconnects with exponential backoff, resubscribing with
// after_seq so nothing is missed. Close code 4001 means the session ended:
// the client stops and reports it instead of reconnecting. Close code 4029
// means the server refused this connection because the person holds as
// many as it allows (too many tabs): the client says so and tries again
// only after a long pause, or when the tab is shown again.

/** Connection states reported to onState. */
export const LiveState = Object.freeze({
  CONNECTING: 'connecting',
  LIVE: 'live',
  RECONNECTING: 'reconnecting',
  OFFLINE: 'offline',
  LIMITED: 'limited',
});

/** Close code the server uses when the session behind the socket ended. */
export const CLOSE_SESSION_ENDED = 4001;
/** Close code: the session was replaced (impersonation started or ended); reconnect now. */
export const CLOSE_SESSION_CHANGED = 4002;
/** Close code: too many live connections for this session or person; wait before trying again. */
export const CLOSE_TOO_MANY_SOCKETS = 4029;
/** Pause before a connection refused with 4029 is tried again (jittered down to 75%). */
const LIMITED_RETRY_MS = 60000;

const BACKOFF_FIRST_MS = 500;
const BACKOFF_CAP_MS = 10000;
/** After this many failed attempts in a row the state reads offline (retries go on). */
const OFFLINE_AFTER_FAILURES = 6;
/** A connection that stayed up this long resets the backoff when it drops. */
const STABLE_AFTER_MS = 5000;
/** Server error codes after which a subscription may simply be tried again. */
const RETRYABLE_SUBSCRIBE_ERRORS = new Set(['replay_failed', 'unavailable']);
const RESUBSCRIBE_DELAY_MS = 2000;

/** The WebSocket URL for a path on this page's origin (wss: on https: pages). */
export function liveURL(path = '/ws', loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}${path}`;
}

/** Delay before reconnect attempt n (1-based): doubling, capped, with jitter. */
export function backoffDelay(attempt, random = Math.random) {
  const exp = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** Math.max(0, attempt - 1));
  // Between 75% and 100% of the nominal delay so many tabs do not reconnect
  // in lockstep after a server restart.
  return Math.round(exp * (0.75 + 0.25 * random()));
}

/** Splits a text frame into messages; lines that are not JSON objects are skipped. */
export function parseFrame(text) {
  const messages = [];
  for (const line of String(text).split('\n')) {
    const trimmed = line.trim();
    if (!trimmed) continue;
    try {
      const msg = JSON.parse(trimmed);
      if (msg && typeof msg === 'object') messages.push(msg);
    } catch {
      console.warn('live: ignoring a line that is not JSON', trimmed.slice(0, 200));
    }
  }
  return messages;
}

function seqOf(message) {
  const raw = message.seq ?? (message.event && message.event.seq);
  const seq = Number(raw);
  return raw !== undefined && raw !== null && Number.isFinite(seq) ? seq : null;
}

/**
 * One WebSocket connection shared by every live feature of the page.
 *
 *   const live = new LiveConnection({ onState, onSessionEnded, onError });
 *   const off = live.subscribe('session', (event, message) => { ... });
 *   live.start();
 *   ...
 *   off();        // stop receiving one topic's events
 *   live.stop();  // close for good (sign-out)
 */
export class LiveConnection {
  #url;
  #onState;
  #onSessionEnded;
  #onSessionChanged;
  #onError;
  #WebSocketImpl;

  /** @type {Map<string, {listeners: Set<Function>, lastSeq: number}>} */
  #topics = new Map();
  /** @type {WebSocket|null} */
  #socket = null;
  #state = LiveState.OFFLINE;
  #running = false;
  #everConnected = false;
  #failures = 0;
  #openedAt = 0;
  #timer = null;
  #nextRetryAt = 0;
  #onOnline = () => this.#handleOnline();
  #onOffline = () => this.#handleOffline();
  #onVisible = () => this.#handleVisible();

  /**
   * @param {object} [options]
   * @param {string} [options.url] WebSocket URL; defaults to /ws on this origin
   * @param {(state: string, info: {failures: number, retryInMs: number|null}) => void} [options.onState]
   *   called whenever the connection state changes
   * @param {(reason: string) => void} [options.onSessionEnded]
   *   called once when the server closes with 4001; the client has stopped
   * @param {(message: object) => void} [options.onError]
   *   called with {"type":"error",...} messages from the server
   * @param {typeof WebSocket} [options.WebSocket] constructor to use (tests)
   */
  constructor({ url, onState, onSessionEnded, onSessionChanged, onError, WebSocket: impl } = {}) {
    this.#onSessionChanged = onSessionChanged;
    this.#url = url || liveURL();
    this.#onState = onState;
    this.#onSessionEnded = onSessionEnded;
    this.#onError = onError;
    this.#WebSocketImpl = impl || globalThis.WebSocket;
  }

  /** The current state: connecting, live, reconnecting, offline or limited. */
  get state() {
    return this.#state;
  }

  /** Whether start() was called and the client has not stopped since. */
  get running() {
    return this.#running;
  }

  /** The last seq received on a topic (0 when none). */
  lastSeq(topic) {
    const entry = this.#topics.get(topic);
    return entry ? entry.lastSeq : 0;
  }

  /**
   * Follows a topic. The listener receives (event, message) for each event,
   * in seq order, never twice. Subscribing before start() is fine: topics are
   * (re)subscribed every time the socket opens.
   *
   * @param {string} topic e.g. 'session', 'activity', 'impersonation:<id>'
   * @param {(event: object, message: object) => void} listener
   * @param {{afterSeq?: number}} [options] resume point for a topic not seen yet
   * @returns {() => void} removes the listener
   */
  subscribe(topic, listener, { afterSeq } = {}) {
    let entry = this.#topics.get(topic);
    const isNew = !entry || entry.listeners.size === 0;
    if (!entry) {
      entry = { listeners: new Set(), lastSeq: 0 };
      this.#topics.set(topic, entry);
    }
    if (Number.isFinite(afterSeq) && afterSeq > entry.lastSeq) entry.lastSeq = afterSeq;
    entry.listeners.add(listener);
    if (isNew && this.#isOpen()) this.#sendSubscribe(topic, entry);
    return () => {
      if (!entry.listeners.delete(listener) || entry.listeners.size > 0) return;
      // Last listener gone: the server stops sending the topic. The entry
      // (and its last seq) is kept so a later subscribe resumes from there.
      this.#send({ type: 'unsubscribe', topic });
    };
  }

  /** Opens the connection (no-op when already running). */
  start() {
    if (this.#running) return;
    this.#running = true;
    this.#failures = 0;
    if (typeof window !== 'undefined') {
      window.addEventListener('online', this.#onOnline);
      window.addEventListener('offline', this.#onOffline);
    }
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', this.#onVisible);
    this.#connect();
  }

  /** Closes the connection for good; the state becomes offline. */
  stop() {
    if (!this.#running && !this.#socket) return;
    this.#running = false;
    this.#clearTimer();
    if (typeof window !== 'undefined') {
      window.removeEventListener('online', this.#onOnline);
      window.removeEventListener('offline', this.#onOffline);
    }
    if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', this.#onVisible);
    const socket = this.#socket;
    this.#socket = null;
    if (socket) {
      try {
        socket.close(1000, 'client closed');
      } catch {
        // Already closing.
      }
    }
    this.#setState(LiveState.OFFLINE);
  }

  /** Reconnects now instead of waiting for the backoff timer. */
  reconnectNow() {
    if (!this.#running || this.#socket) return;
    this.#clearTimer();
    this.#connect();
  }

  // ---------------------------------------------------------------- private

  #isOpen() {
    return this.#socket !== null && this.#socket.readyState === 1; // OPEN
  }

  #setState(state) {
    if (state === this.#state) return;
    this.#state = state;
    const retryInMs = this.#timer ? Math.max(0, this.#nextRetryAt - Date.now()) : null;
    if (this.#onState) {
      try {
        this.#onState(state, { failures: this.#failures, retryInMs });
      } catch (err) {
        console.error('live: state listener failed', err);
      }
    }
  }

  #clearTimer() {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }

  #connect() {
    this.#timer = null;
    if (!this.#running) return;
    if (!this.#everConnected && this.#failures === 0) this.#setState(LiveState.CONNECTING);

    let socket;
    try {
      socket = new this.#WebSocketImpl(this.#url);
    } catch (err) {
      console.warn('live: cannot open the WebSocket', err);
      this.#scheduleReconnect();
      return;
    }
    this.#socket = socket;

    socket.onopen = () => {
      if (socket !== this.#socket) return;
      this.#everConnected = true;
      this.#openedAt = Date.now();
      this.#setState(LiveState.LIVE);
      for (const [topic, entry] of this.#topics) {
        if (entry.listeners.size > 0) this.#sendSubscribe(topic, entry);
      }
    };

    socket.onmessage = (e) => {
      if (socket !== this.#socket) return;
      if (typeof e.data !== 'string') return; // the protocol is text only
      // Any message proves the connection works end to end.
      this.#failures = 0;
      if (this.#state !== LiveState.LIVE) this.#setState(LiveState.LIVE);
      for (const message of parseFrame(e.data)) this.#dispatch(message);
    };

    socket.onerror = () => {
      // A close event always follows; reconnection is decided there.
    };

    socket.onclose = (e) => {
      if (socket !== this.#socket) return;
      this.#socket = null;
      this.#handleClose(e);
    };
  }

  #sendSubscribe(topic, entry) {
    this.#send({ type: 'subscribe', topic, after_seq: entry.lastSeq });
  }

  #send(message) {
    if (!this.#isOpen()) return false;
    try {
      this.#socket.send(JSON.stringify(message));
      return true;
    } catch (err) {
      console.warn('live: send failed', err);
      return false;
    }
  }

  #dispatch(message) {
    switch (message.type) {
      case 'event': {
        const entry = this.#topics.get(message.topic);
        if (!entry) return;
        const seq = seqOf(message);
        // Events without a seq (or with 0, such as session changes) are
        // not part of a replayable stream: they are delivered as they come.
        if (seq !== null && seq > 0) {
          if (seq <= entry.lastSeq) return; // already delivered
          entry.lastSeq = seq;
        }
        for (const listener of [...entry.listeners]) {
          try {
            listener(message.event ?? {}, message);
          } catch (err) {
            console.error(`live: listener for ${message.topic} failed`, err);
          }
        }
        return;
      }
      case 'subscribed':
      case 'unsubscribed':
        return;
      case 'error':
        this.#retrySubscription(message);
        if (this.#onError) this.#onError(message);
        else console.warn('live: server error', message);
        return;
      default:
        // Unknown message types are ignored so the server can add new ones.
        return;
    }
  }

  /** Subscribes again, after a pause, when the server says a retry may work. */
  #retrySubscription(message) {
    const topic = message.topic;
    if (!topic || !RETRYABLE_SUBSCRIBE_ERRORS.has(message.code)) return;
    const socket = this.#socket;
    setTimeout(() => {
      const entry = this.#topics.get(topic);
      if (socket !== this.#socket || !entry || entry.listeners.size === 0) return;
      this.#sendSubscribe(topic, entry);
    }, RESUBSCRIBE_DELAY_MS);
  }

  #handleClose(e) {
    if (!this.#running) return;
    if (e && e.code === CLOSE_SESSION_ENDED) {
      this.stop();
      if (this.#onSessionEnded) this.#onSessionEnded(e.reason || 'session ended');
      return;
    }
    if (e && e.code === CLOSE_SESSION_CHANGED) {
      // The cookie already holds the new session: reconnect at once.
      this.#failures = 0;
      this.#openedAt = 0;
      if (this.#onSessionChanged) this.#onSessionChanged();
      this.#clearTimer();
      this.#connect();
      return;
    }
    if (e && e.code === CLOSE_TOO_MANY_SOCKETS) {
      // Refused as soon as it opened: this person already has as many
      // live connections as the server allows. Retrying at once would be
      // refused again, so say why and wait long.
      this.#openedAt = 0;
      this.#clearTimer();
      const delay = Math.round(LIMITED_RETRY_MS * (0.75 + 0.25 * Math.random()));
      this.#nextRetryAt = Date.now() + delay;
      this.#timer = setTimeout(() => this.#connect(), delay);
      this.#setState(LiveState.LIMITED);
      return;
    }
    // 1001 (server going away), 4008 (slow consumer), 1013 (try again
    // later), abnormal closes and everything else: retry with after_seq.
    if (this.#openedAt && Date.now() - this.#openedAt >= STABLE_AFTER_MS) this.#failures = 0;
    this.#openedAt = 0;
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    if (!this.#running) return;
    this.#clearTimer();
    this.#failures += 1;
    if (typeof navigator !== 'undefined' && navigator.onLine === false) {
      // Wait for the browser's 'online' event rather than spinning.
      this.#setState(LiveState.OFFLINE);
      return;
    }
    const delay = backoffDelay(this.#failures);
    this.#nextRetryAt = Date.now() + delay;
    this.#timer = setTimeout(() => this.#connect(), delay);
    this.#setState(this.#failures > OFFLINE_AFTER_FAILURES ? LiveState.OFFLINE : LiveState.RECONNECTING);
  }

  #handleOnline() {
    if (!this.#running || this.#socket) return;
    this.#clearTimer();
    this.#setState(LiveState.RECONNECTING);
    this.#connect();
  }

  #handleOffline() {
    if (!this.#running) return;
    this.#setState(LiveState.OFFLINE);
  }

  /** A tab shown again after being refused for too many connections tries at once: the person may have closed others. */
  #handleVisible() {
    if (!this.#running || this.#socket || this.#state !== LiveState.LIMITED) return;
    if (document.visibilityState !== 'visible') return;
    this.#clearTimer();
    this.#connect();
  }
}
