// HTTP client for the Standin API (/api/v1).
//
// Requests and responses are JSON; cookies ride along (credentials:
// 'same-origin'); every request that is not a GET or HEAD carries the
// X-CSRF-Token header with the token from GET /api/v1/session. Failures are
// thrown as ApiError, built from the server's error body
// {"error": {"code", "message", "reason"?}} when there is one and from the
// HTTP status (or the network failure) otherwise, so callers can always show
// error.message to a person.

/** Prefix of every API path. */
export const API_BASE = '/api/v1';

/** A request that takes longer than this is abandoned. */
const TIMEOUT_MS = 20000;

const SAFE_METHODS = new Set(['GET', 'HEAD']);

let csrfToken = '';
/** The actor/user pair of the last session fetched ('' when unknown). */
let identity = '';

/** An API failure that can be shown to a person. */
export class ApiError extends Error {
  /**
   * @param {string} message a sentence a person understands
   * @param {{status?: number, code?: string, reason?: string, details?: unknown}} [info]
   *   status is the HTTP status, 0 when no answer came back.
   */
  constructor(message, { status = 0, code = 'unknown_error', reason, details } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  /** True when the server did not answer at all (offline, DNS, timeout). */
  get isNetwork() {
    return this.status === 0;
  }
}

/** Remembers the CSRF token sent with state-changing requests. */
export function setCsrfToken(token) {
  csrfToken = typeof token === 'string' ? token : '';
}

/** The CSRF token currently in use ('' when signed out). */
export function getCsrfToken() {
  return csrfToken;
}

/** Words for an HTTP status when the server's answer had no usable message. */
function messageForStatus(status) {
  switch (status) {
    case 400:
      return 'The request was not accepted. Check the values and try again.';
    case 401:
      return 'You are not signed in.';
    case 403:
      return 'You are not allowed to do that.';
    case 404:
      return 'That could not be found.';
    case 409:
      return 'That conflicts with a change made elsewhere. Reload and try again.';
    case 413:
      return 'That is too large to send.';
    case 429:
      return 'Too many requests. Wait a moment and try again.';
    case 502:
    case 504:
      return 'The server did not answer in time. Try again in a moment.';
    case 503:
      return 'Standin is temporarily unavailable. Try again in a moment.';
    default:
      if (status >= 500) return 'The server ran into a problem. Try again in a moment.';
      return `The request failed (HTTP ${status}).`;
  }
}

function snakeCaseForStatus(status) {
  const known = {
    400: 'bad_request', 401: 'unauthenticated', 403: 'forbidden', 404: 'not_found',
    409: 'conflict', 413: 'too_large', 429: 'rate_limited', 503: 'unavailable',
  };
  return known[status] || (status >= 500 ? 'server_error' : 'http_error');
}

/** Builds the URL for an API path ('/session' or '/api/v1/session') and query. */
export function apiURL(path, query) {
  let url = path.startsWith(API_BASE + '/') || path === API_BASE ? path : API_BASE + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined || value === null || value === '') continue;
      params.append(key, String(value));
    }
    const qs = params.toString();
    if (qs) url += (url.includes('?') ? '&' : '?') + qs;
  }
  return url;
}

/** Parses a response body: JSON when it is JSON, null when empty. */
async function readBody(response) {
  let text;
  try {
    text = await response.text();
  } catch {
    return { body: null, parsed: false };
  }
  if (!text) return { body: null, parsed: true };
  try {
    return { body: JSON.parse(text), parsed: true };
  } catch {
    return { body: text, parsed: false };
  }
}

function errorFromResponse(status, body) {
  const err = body && typeof body === 'object' ? body.error : null;
  if (err && typeof err === 'object') {
    const message = typeof err.message === 'string' && err.message.trim()
      ? err.message
      : messageForStatus(status);
    return new ApiError(message, {
      status,
      code: typeof err.code === 'string' && err.code ? err.code : snakeCaseForStatus(status),
      reason: typeof err.reason === 'string' && err.reason ? err.reason : undefined,
      details: err,
    });
  }
  return new ApiError(messageForStatus(status), { status, code: snakeCaseForStatus(status) });
}

/** Combines the caller's abort signal with the request timeout. */
function timeoutSignal(outer) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException('timeout', 'TimeoutError')), TIMEOUT_MS);
  const onAbort = () => controller.abort(outer.reason);
  if (outer) {
    if (outer.aborted) controller.abort(outer.reason);
    else outer.addEventListener('abort', onAbort, { once: true });
  }
  return {
    signal: controller.signal,
    done() {
      clearTimeout(timer);
      if (outer) outer.removeEventListener('abort', onAbort);
    },
  };
}

async function send(method, path, { body, query, signal, headers: extraHeaders } = {}) {
  const headers = { Accept: 'application/json', ...extraHeaders };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (!SAFE_METHODS.has(method) && csrfToken) {
    headers['X-CSRF-Token'] = csrfToken;
  }

  const timing = timeoutSignal(signal);
  init.signal = timing.signal;
  let response;
  try {
    response = await fetch(apiURL(path, query), init);
  } catch (cause) {
    if (signal && signal.aborted) {
      throw new ApiError('The request was cancelled.', { code: 'aborted' });
    }
    if (timing.signal.aborted) {
      throw new ApiError('The server took too long to answer. Try again.', { code: 'timeout' });
    }
    const offline = typeof navigator !== 'undefined' && navigator.onLine === false;
    throw new ApiError(
      offline
        ? 'You appear to be offline. Check your connection and try again.'
        : "Can't reach the Standin server. Check your connection and try again.",
      { code: 'network_error', details: cause },
    );
  } finally {
    timing.done();
  }

  const { body: data } = await readBody(response);
  if (!response.ok) throw errorFromResponse(response.status, data);
  return data;
}

function isCsrfFailure(error) {
  return error instanceof ApiError && error.status === 403 && /csrf/i.test(error.code);
}

/**
 * Sends one request and resolves with the parsed JSON body (null for an
 * empty body). A state-changing request refused for a stale CSRF token is
 * retried once after fetching a fresh token from GET /session.
 *
 * @param {string} method HTTP method
 * @param {string} path an API path such as '/session' ('/api/v1' is added)
 * @param {{body?: unknown, query?: Record<string, unknown>, signal?: AbortSignal,
 *          headers?: Record<string, string>}} [options]
 */
export async function request(method, path, options = {}) {
  const verb = method.toUpperCase();
  try {
    return await send(verb, path, options);
  } catch (error) {
    if (SAFE_METHODS.has(verb) || !isCsrfFailure(error)) throw error;
    // Retry only as the same person: if another tab signed in as someone
    // else, or started or ended impersonation, the request is not replayed.
    const before = identity;
    await fetchSession();
    if (identity !== before) throw error;
    return send(verb, path, options);
  }
}

/**
 * Downloads an API resource whole, for exports: the body is read as it
 * streams, reporting the bytes received, with no time limit. A transfer
 * the server breaks off before its end (as it does when an export fails
 * midway) rejects: a part is never passed off as the whole.
 *
 * @param {string} path an API path such as '/activity/export'
 * @param {Record<string, unknown>} [query]
 * @param {{onProgress?: (bytes: number) => void, signal?: AbortSignal}} [options]
 * @returns {Promise<{blob: Blob, bytes: number, filename: string}>}
 */
export async function download(path, query, { onProgress, signal } = {}) {
  let response;
  try {
    response = await fetch(apiURL(path, query), { credentials: 'same-origin', cache: 'no-store', signal });
  } catch (cause) {
    throw new ApiError("Can't reach the Standin server. Check your connection and try again.", { code: 'network_error', details: cause });
  }
  if (!response.ok) {
    const { body } = await readBody(response);
    throw errorFromResponse(response.status, body);
  }
  const chunks = [];
  let bytes = 0;
  try {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      bytes += value.length;
      if (onProgress) onProgress(bytes);
    }
  } catch (cause) {
    throw new ApiError('The server broke the transfer off before the end, so what arrived is incomplete and was not saved.', {
      status: response.status, code: 'incomplete_transfer', details: cause,
    });
  }
  const match = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') || '');
  return {
    blob: new Blob(chunks, { type: response.headers.get('Content-Type') || 'application/octet-stream' }),
    bytes,
    filename: match ? match[1] : 'download',
  };
}

/** Shorthands for request(). */
export const api = {
  get: (path, options) => request('GET', path, options),
  post: (path, body, options) => request('POST', path, { ...options, body }),
  put: (path, body, options) => request('PUT', path, { ...options, body }),
  patch: (path, body, options) => request('PATCH', path, { ...options, body }),
  delete: (path, options) => request('DELETE', path, options),
};

/**
 * GET /api/v1/session: the signed-in session, {user, actor, impersonation,
 * csrf_token}. Remembers the CSRF token. Rejects with status 401 when signed out.
 */
export async function fetchSession(options) {
  const session = await send('GET', '/session', options);
  setCsrfToken(session && session.csrf_token);
  identity = identityOf(session);
  return session;
}

/** Who a session acts as and for: actor and effective user. */
function identityOf(session) {
  if (!session || !session.actor || !session.user) return '';
  return `${session.actor.id}/${session.user.id}`;
}

/** GET /api/v1/about: facts about this server, such as demo mode. */
export function about(options) {
  return send('GET', '/about', options);
}

/** POST /api/v1/auth/login. */
export function login(email, password, options) {
  return request('POST', '/auth/login', { ...options, body: { email, password } });
}

/** POST /api/v1/auth/logout; forgets the CSRF token once the server agreed. */
export async function logout(options) {
  const result = await request('POST', '/auth/logout', options);
  setCsrfToken('');
  return result;
}
