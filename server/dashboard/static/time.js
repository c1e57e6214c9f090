// Time ranges as the analytics endpoints take them: ISO 8601 with the
// browser's own UTC offset, so the server cuts buckets at local midnights
// and hours, and answers bucket timestamps in the same zone.

const pad = (n, width = 2) => String(Math.abs(Math.trunc(n))).padStart(width, '0');

/** isoLocal formats d as 2026-11-26T17:05:09.123+05:30 in the browser's zone. */
export function isoLocal(d) {
  const offset = -d.getTimezoneOffset(); // minutes east of UTC
  const sign = offset >= 0 ? '+' : '-';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}` +
    `${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

/** The preset ranges, by the value of their radio button. */
export const presets = {
  '24h': { label: 'Last 24 h', ms: 24 * 3600e3 },
  '7d': { label: 'Last 7 days', ms: 7 * 86400e3 },
  '30d': { label: 'Last 30 days', ms: 30 * 86400e3 },
  '90d': { label: 'Last 90 days', ms: 90 * 86400e3 },
};

/**
 * range returns {from, to} Dates for a preset (ending now) or, for
 * 'custom', the two datetime-local input values (local time); it throws an
 * Error with a readable message when the custom range is unusable.
 */
export function range(preset, customFrom, customTo, now = new Date()) {
  if (preset !== 'custom') {
    const p = presets[preset] ?? presets['7d'];
    return { from: new Date(now.getTime() - p.ms), to: now };
  }
  const from = new Date(customFrom);
  // The end minute is included whole: 23:59 means up to 23:59:59.999.
  const to = new Date(new Date(customTo).getTime() + 59_999);
  if (!customFrom || !customTo || Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) {
    throw new Error('Choose both the start and the end of the custom range.');
  }
  if (to < from) throw new Error('The custom range ends before it starts.');
  return { from, to };
}

/** toInputValue formats d for a datetime-local input (local time, minutes). */
export function toInputValue(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
