import { createHash } from 'node:crypto';

/** A decoded form value: Stripe's bracket syntax nests objects (`metadata[k]=v`) and arrays (`types[0]=card`). */
export type FormValue = string | FormValue[] | FormObject;
export interface FormObject {
  [key: string]: FormValue;
}

export class FormDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FormDecodeError';
  }
}

// Keys that would reach Object.prototype when assigned with `obj[key] = ...`.
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const KEY_PATTERN = /^([^[\]]+)((?:\[[^[\]]*\])*)$/;
const INDEX_PATTERN = /^(0|[1-9]\d*)$/;

/** Marks objects built from `[0]`/`[]` segments, turned into arrays once every pair is read. */
const arrayLike = new WeakSet<FormObject>();

function keySegments(key: string): string[] {
  const match = KEY_PATTERN.exec(key);
  if (match === null || match[1] === undefined) throw new FormDecodeError(`Invalid parameter name: ${key}`);
  const segments = [match[1]];
  for (const bracket of (match[2] ?? '').matchAll(/\[([^[\]]*)\]/g)) segments.push(bracket[1] ?? '');
  for (const segment of segments) {
    if (FORBIDDEN_KEYS.has(segment)) throw new FormDecodeError(`Invalid parameter name: ${key}`);
  }
  return segments;
}

function childObject(parent: FormObject, segment: string, nextSegment: string, key: string): FormObject {
  const existing = parent[segment];
  if (existing === undefined) {
    const created: FormObject = {};
    if (nextSegment === '' || INDEX_PATTERN.test(nextSegment)) arrayLike.add(created);
    parent[segment] = created;
    return created;
  }
  if (typeof existing === 'string' || Array.isArray(existing)) {
    throw new FormDecodeError(`Parameter ${key} mixes a value and nested keys`);
  }
  return existing;
}

function finalize(value: FormValue): FormValue {
  if (typeof value === 'string' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (arrayLike.has(value) && keys.every((key) => INDEX_PATTERN.test(key))) {
    return keys
      .map(Number)
      .sort((a, b) => a - b)
      .map((index) => finalize(value[String(index)] ?? ''));
  }
  const result: FormObject = {};
  for (const key of keys) {
    const child = value[key];
    if (child !== undefined) result[key] = finalize(child);
  }
  return result;
}

/** Decodes `application/x-www-form-urlencoded` the way Stripe's API reads what its SDKs send. */
export function decodeForm(body: string): FormObject {
  const root: FormObject = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const segments = keySegments(key);
    let parent = root;
    for (let index = 0; index < segments.length - 1; index++) {
      let segment = segments[index] ?? '';
      const next = segments[index + 1] ?? '';
      if (segment === '') segment = String(Object.keys(parent).length); // `a[]=x` appends
      parent = childObject(parent, segment, next, key);
    }
    let last = segments[segments.length - 1] ?? '';
    if (last === '') last = String(Object.keys(parent).length);
    if (parent[last] !== undefined) throw new FormDecodeError(`Parameter ${key} is given twice`);
    parent[last] = value;
  }
  const decoded = finalize(root);
  return typeof decoded === 'string' || Array.isArray(decoded) ? {} : decoded;
}

/** Same params in any key order give the same digest: Stripe compares parameters, not bytes. */
export function paramsDigest(params: FormValue): string {
  const canonical = (value: FormValue): string => {
    if (typeof value === 'string') return JSON.stringify(value);
    if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(value[key] ?? '')}`).join(',')}}`;
  };
  return createHash('sha256').update(canonical(params)).digest('hex');
}
