'use strict'
// One twin (device or module): desired and reported properties with their
// $version and $metadata, tags, and the twin's etag and version.
// Patches are JSON merge patches (a null deletes the member), as IoT Hub
// applies them; the limits are IoT Hub's: 32 KiB of desired and of reported
// properties and 8 KiB of tags as IoT Hub counts them, objects 10 levels deep,
// names up to 1 KiB without '.', '$', spaces or control characters, strings
// up to 4 KiB, integers within +-2^52.

const MAX_SECTION_BYTES = 32 * 1024
const MAX_TAGS_BYTES = 8 * 1024
const MAX_DEPTH = 10
const MAX_NAME = 1024
const MAX_STRING = 4096
const MAX_INT = 4503599627370495
const MIN_INT = -4503599627370496

class TwinError extends Error {}

function isObject (v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g

function checkValue (v, depth, path) {
  if (isObject(v)) {
    if (depth > MAX_DEPTH) throw new TwinError('twin object nested deeper than ' + MAX_DEPTH + ' levels at ' + path)
    for (const [k, child] of Object.entries(v)) {
      if (k.length === 0 || Buffer.byteLength(k) > MAX_NAME || /[.$ ]/.test(k) || k.search(CONTROL) >= 0) {
        throw new TwinError('twin property name "' + k.slice(0, 64) + '" at ' + path + ' is not allowed')
      }
      checkValue(child, depth + 1, path + '.' + k)
    }
  } else if (Array.isArray(v)) {
    v.forEach((e, i) => checkValue(e, depth, path + '[' + i + ']'))
  } else if (typeof v === 'string' && Buffer.byteLength(v) > MAX_STRING) {
    throw new TwinError('twin string value at ' + path + ' longer than ' + MAX_STRING + ' bytes')
  } else if (typeof v === 'number' && Number.isInteger(v) && (v > MAX_INT || v < MIN_INT)) {
    throw new TwinError('twin integer at ' + path + ' out of IoT Hub\'s range')
  }
}

// IoT Hub's twin size: names and string values in UTF-8 without control
// characters, 8 bytes a number, 4 a boolean, objects the sum of their members.
function twinSize (v) {
  if (typeof v === 'string') return Buffer.byteLength(v.replace(CONTROL, ''))
  if (typeof v === 'number') return 8
  if (typeof v === 'boolean') return 4
  if (Array.isArray(v)) return v.reduce((n, e) => n + twinSize(e), 0)
  if (isObject(v)) return Object.entries(v).reduce((n, [k, e]) => n + twinSize(k) + twinSize(e), 0)
  return 0
}

function checkSize (doc, limit, section) {
  const n = twinSize(doc)
  if (n > limit) throw new TwinError(section + ' of ' + n + ' bytes over IoT Hub\'s ' + limit + ' byte limit')
}

// A patch from outside: an object whose members are values or null; the
// client's own "$version" in a reported patch is ignored, as IoT Hub does.
function checkPatch (patch, section) {
  if (!isObject(patch)) throw new TwinError(section + ' patch is not a JSON object')
  const clean = {}
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$version' || k === '$metadata') continue
    clean[k] = v
  }
  checkValue(clean, 0, section)
  return clean
}

function merge (target, patch) {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete target[k]
    else if (isObject(v)) {
      if (!isObject(target[k])) target[k] = {}
      merge(target[k], v)
    } else target[k] = v
  }
}

// The merge patch that turns a into b (removed members become null).
function diff (a, b) {
  const out = {}
  for (const k of Object.keys(a)) if (!(k in b)) out[k] = null
  for (const [k, v] of Object.entries(b)) {
    if (isObject(v) && isObject(a[k])) {
      const d = diff(a[k], v)
      if (Object.keys(d).length) out[k] = d
    } else if (JSON.stringify(a[k]) !== JSON.stringify(v)) {
      out[k] = isObject(v) ? structuredClone(v) : v
    }
  }
  return out
}

function stamp (meta, patch, now, version) {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) { delete meta[k]; continue }
    if (isObject(v)) {
      if (!isObject(meta[k])) meta[k] = {}
      stamp(meta[k], v, now, version)
    } else meta[k] = {}
    meta[k].$lastUpdated = now
    if (version !== undefined) meta[k].$lastUpdatedVersion = version
  }
}

function withoutDollar (meta) {
  const out = {}
  for (const [k, v] of Object.entries(meta)) if (!k.startsWith('$')) out[k] = v
  return out
}

class Section {
  constructor (withVersions) {
    this.props = {}
    this.version = 1
    this.meta = {}
    this.lastUpdated = new Date().toISOString()
    this.withVersions = withVersions
  }

  apply (patch) {
    const next = structuredClone(this.props)
    merge(next, patch)
    checkSize(next, MAX_SECTION_BYTES, this.withVersions ? 'desired properties' : 'reported properties')
    this.props = next
    this.version++
    this.lastUpdated = new Date().toISOString()
    stamp(this.meta, patch, this.lastUpdated, this.withVersions ? this.version : undefined)
    return this.version
  }

  // Replaces the whole section; returns the merge patch from old to new.
  replace (doc) {
    checkSize(doc, MAX_SECTION_BYTES, 'desired properties')
    const patch = diff(this.props, doc)
    this.props = structuredClone(doc)
    this.version++
    this.lastUpdated = new Date().toISOString()
    this.meta = {}
    stamp(this.meta, this.props, this.lastUpdated, this.withVersions ? this.version : undefined)
    return patch
  }

  // The section as the device reads it over MQTT.
  device () {
    return Object.assign(structuredClone(this.props), { $version: this.version })
  }

  // The section as the service reads it, with $metadata.
  service () {
    const meta = Object.assign({ $lastUpdated: this.lastUpdated }, withoutDollar(this.meta))
    if (this.withVersions) meta.$lastUpdatedVersion = this.version
    return Object.assign(structuredClone(this.props), { $metadata: meta, $version: this.version })
  }

  toJSON () {
    return { props: this.props, version: this.version, meta: this.meta, lastUpdated: this.lastUpdated }
  }

  static from (o, withVersions) {
    const s = new Section(withVersions)
    Object.assign(s, { props: o.props, version: o.version, meta: o.meta, lastUpdated: o.lastUpdated })
    return s
  }
}

// Etags stay distinct across restarts of a stand-in that keeps its state.
let etagCounter = Date.now()

function nextTwinEtag () {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt(++etagCounter))
  return b.toString('base64')
}

class Twin {
  constructor () {
    this.desired = new Section(true)
    this.reported = new Section(false)
    this.tags = {}
    this.version = 1
    this.etag = nextTwinEtag()
  }

  touch () {
    this.version++
    this.etag = nextTwinEtag()
  }

  patchReported (patch) {
    const v = this.reported.apply(checkPatch(patch, 'reported'))
    this.version++
    return v
  }

  // Service-side update of desired properties and tags; returns the desired
  // patch to push to the device (null when desired did not change).
  patchService (body) {
    if (!isObject(body)) throw new TwinError('twin patch is not a JSON object')
    const props = body.properties === undefined ? {} : body.properties
    if (!isObject(props)) throw new TwinError('"properties" is not an object')
    if (props.reported !== undefined) throw new TwinError('reported properties are read-only for the service')
    let desired = null
    if (props.desired !== undefined) desired = checkPatch(props.desired, 'desired')
    let tags = null
    if (body.tags !== undefined) tags = checkPatch(body.tags, 'tags')
    if (tags) {
      const next = structuredClone(this.tags)
      merge(next, tags)
      checkSize(next, MAX_TAGS_BYTES, 'tags')
      this.tags = next
    }
    if (desired) this.desired.apply(desired)
    this.touch()
    return desired
  }

  replaceDesired (doc) {
    if (!isObject(doc)) throw new TwinError('desired properties are not a JSON object')
    const patch = this.desired.replace(checkPatch(doc, 'desired'))
    this.touch()
    return patch
  }

  toJSON () {
    return { desired: this.desired, reported: this.reported, tags: this.tags, version: this.version, etag: this.etag }
  }

  static from (o) {
    const t = new Twin()
    t.desired = Section.from(o.desired, true)
    t.reported = Section.from(o.reported, false)
    Object.assign(t, { tags: o.tags, version: o.version, etag: o.etag })
    return t
  }
}

module.exports = { Twin, TwinError, isObject, diff }
