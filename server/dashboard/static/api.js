// The dashboard's only way to the server: GET requests to the API with the
// key in the x-portkey-api-key header, never in the URL. Every failure
// becomes an ApiError that says what happened in words a person can act on.

/** ApiError is a failed call: status is the HTTP status, 0 for no answer. */
export class ApiError extends Error {
  constructor(status, message, { fields = [], retryAfter = null } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.fields = fields;
    this.retryAfter = retryAfter;
  }

  /** A one-line explanation, with what to do about it. */
  describe() {
    switch (true) {
      case this.status === 0:
        return `Could not reach feedbackd: ${this.message}`;
      case this.status === 401:
        return `The API key was refused (401): ${this.message}`;
      case this.status === 429:
        return `Too many requests (429): ${this.message}` +
          (this.retryAfter ? `. Retry in ${this.retryAfter} s.` : '.');
      case this.status >= 500:
        return `feedbackd failed (${this.status}): ${this.message}. Retry in a moment.`;
      default: {
        const detail = this.fields.map((f) => `${f.path}: ${f.message}`).join('; ');
        return `Request rejected (${this.status}): ${this.message}` + (detail ? ` (${detail})` : '');
      }
    }
  }
}

/**
 * get calls GET /v1{path} with the query params that are not null or
 * undefined, and returns the decoded JSON body.
 */
export async function get(key, path, params = {}, signal) {
  const url = new URL('/v1' + path, location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') url.searchParams.set(name, String(value));
  }
  let res;
  try {
    res = await fetch(url, {
      headers: { 'x-portkey-api-key': key, Accept: 'application/json' },
      signal,
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, err.message);
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    // An answer that is not JSON (a proxy's error page) is described by its status.
  }
  if (!res.ok) {
    const retry = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
    throw new ApiError(res.status, body?.message ?? res.statusText ?? 'error', {
      fields: Array.isArray(body?.errors) ? body.errors : [],
      retryAfter: Number.isFinite(retry) ? retry : null,
    });
  }
  if (body === null) throw new ApiError(res.status, 'the answer was not JSON');
  return body;
}
