// Reading rows from preference files: JSON Lines (plain or gzip), JSON arrays and Parquet, all
// streamed; folders, train/test splits by file name, and datasets in the Hugging Face cache.
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { hubCacheDir, snapshotOf } from '../hub';
import { DpoError } from '../errors';
import { dataError, SKIP_FIX } from './types';

/** One row as read, or the error that reading it gave (so a caller may skip it). */
export type RawRow = { where: string; value: unknown } | { where: string; error: DpoError };

export interface SourceOptions {
  split?: string; // pick files by name (train, test, ...); default train when names show splits
  dataDir?: string; // a folder inside a hub dataset, e.g. helpful-base
  hfCache?: string; // the hub cache folder; default $HF_HUB_CACHE or $HF_HOME/hub
}

const DATA_FILE = /\.(jsonl|ndjson|json|parquet)(\.gz)?$/i;
const HUB_ID = /^[\w.-]+\/[\w.-]+$/;

// ---------------------------------------------------------------------------------------------
// Sources

/** The files a source names: a file, a folder (by split), or a hub dataset in the local cache. */
export async function resolveSource(source: string, opts: SourceOptions = {}): Promise<string[]> {
  const stat = await fs.promises.stat(source).catch(() => undefined);
  if (stat?.isFile()) return [source];
  if (stat?.isDirectory()) return filesOfFolder(source, opts.split);
  if (HUB_ID.test(source)) return filesOfHubDataset(source, opts);
  throw new DpoError(
    'ERR_DPO_NOT_FOUND',
    `expected a data file, a folder or a hub dataset name (owner/name), got ${JSON.stringify(source)}; ` +
      'check the path',
  );
}

function filesOfFolder(dir: string, split?: string): string[] {
  const files = walk(dir)
    .filter((f) => DATA_FILE.test(f))
    .sort();
  if (files.length === 0) {
    throw new DpoError(
      'ERR_DPO_NOT_FOUND',
      `expected .jsonl, .jsonl.gz, .json or .parquet files in ${dir}, got none; point at a data folder`,
    );
  }
  const inSplit = (f: string, s: string) =>
    new RegExp(`(^|[-_./])${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([-_.]|$)`, 'i').test(
      path.relative(dir, f),
    );
  if (split !== undefined) {
    const chosen = files.filter((f) => inSplit(f, split));
    if (chosen.length === 0) {
      const names = files.map((f) => path.relative(dir, f)).join(', ');
      throw new DpoError(
        'ERR_DPO_NOT_FOUND',
        `expected files named for split "${split}" in ${dir}, got ${names}; pick a split these names show`,
      );
    }
    return chosen;
  }
  // With no split asked for, a folder laid out as train/test gives its training files.
  const train = files.filter((f) => inSplit(f, 'train'));
  return train.length > 0 ? train : files;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(full));
    else if (entry.isFile() || entry.isSymbolicLink()) out.push(full);
  }
  return out;
}

// A dataset fetched with huggingface_hub lives in datasets--OWNER--NAME/snapshots/<revision>/.
function filesOfHubDataset(id: string, opts: SourceOptions): string[] {
  const cache = opts.hfCache ?? hubCacheDir();
  const repoDir = path.join(cache, `datasets--${id.replace('/', '--')}`);
  const include = opts.dataDir ? ` --include "${opts.dataDir}/*"` : '';
  const fetch =
    `fetch it with: huggingface-cli download ${id} --repo-type dataset${include} ` +
    '(node-dpo never downloads)';
  const snapshot = snapshotOf(repoDir);
  const dir = snapshot && (opts.dataDir ? path.join(snapshot, opts.dataDir) : snapshot);
  if (!dir || !fs.existsSync(dir)) {
    throw new DpoError(
      'ERR_DPO_NOT_FOUND',
      `expected dataset ${id}${opts.dataDir ? ` (${opts.dataDir})` : ''} in the Hugging Face cache ` +
        `at ${repoDir}, got none; ${fetch}`,
    );
  }
  return filesOfFolder(dir, opts.split ?? 'train');
}

// ---------------------------------------------------------------------------------------------
// Rows

/** Streams the rows of one file; a malformed row comes as an error, in order, not a throw. */
export async function* readRows(file: string): AsyncGenerator<RawRow> {
  try {
    yield* readRowsOf(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (typeof e.code === 'string' && e.code.startsWith('Z_')) {
      throw new DpoError(
        'ERR_DPO_DATA',
        `${file}: the gzip data is truncated or corrupt (${e.message}); download or compress the file again`,
        { cause: e },
      );
    }
    throw err;
  }
}

async function* readRowsOf(file: string): AsyncGenerator<RawRow> {
  const gz = await isGzip(file);
  const name = file.replace(/\.gz$/i, '');
  if (/\.parquet$/i.test(name)) {
    if (gz) {
      throw new DpoError(
        'ERR_DPO_UNSUPPORTED',
        `expected a plain .parquet file, got gzip-compressed ${file}; Parquet compresses inside the file, so gunzip it`,
      );
    }
    yield* readParquet(file);
    return;
  }
  const first = await firstByte(openStream(file, gz));
  if (first === 0x5b /* [ */) yield* readJsonArray(file, openStream(file, gz));
  else yield* readJsonLines(file, openStream(file, gz));
}

function openStream(file: string, gz: boolean): NodeJS.ReadableStream {
  const raw = fs.createReadStream(file);
  return gz ? raw.pipe(zlib.createGunzip()) : raw;
}

async function isGzip(file: string): Promise<boolean> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await fh.read(buf, 0, 2, 0);
    return bytesRead === 2 && buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

// The first byte that is not whitespace or a UTF-8 byte-order mark.
async function firstByte(stream: NodeJS.ReadableStream): Promise<number | undefined> {
  let skip = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    for (const b of chunk) {
      if (skip === 0 && b === 0xef) {
        skip = 2;
        continue;
      }
      if (skip > 0 && (b === 0xbb || b === 0xbf)) {
        skip--;
        continue;
      }
      if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) {
        (stream as unknown as { destroy?: () => void }).destroy?.();
        return b;
      }
    }
  }
  return undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Uint8Array, where: string): string | DpoError {
  try {
    return utf8.decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    const at = Buffer.from(bytes).toString('utf8').indexOf('\uFFFD');
    return dataError(
      where,
      'UTF-8 text',
      `bytes that are not UTF-8 (near character ${at})`,
      're-encode the file as UTF-8, or skip bad rows with --skip-bad-rows (skipBadRows)',
    );
  }
}

function parseJson(text: string, where: string): RawRow {
  try {
    return { where, value: JSON.parse(text) };
  } catch (err) {
    return {
      where,
      error: dataError(
        where,
        'a JSON object',
        `text that is not JSON (${(err as Error).message})`,
        SKIP_FIX,
      ),
    };
  }
}

async function* readJsonLines(file: string, stream: NodeJS.ReadableStream): AsyncGenerator<RawRow> {
  let line = 0;
  for await (const bytes of splitLines(stream)) {
    line++;
    const where = `${file}:${line}`;
    const text = decodeUtf8(bytes, where);
    if (text instanceof DpoError) {
      yield { where, error: text };
      continue;
    }
    if (text.trim() === '') continue;
    yield parseJson(text, where);
  }
}

async function* splitLines(stream: NodeJS.ReadableStream): AsyncGenerator<Uint8Array> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const buf = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(0x0a, start); nl !== -1; nl = buf.indexOf(0x0a, start)) {
      yield buf.subarray(start, nl);
      start = nl + 1;
    }
    rest = buf.subarray(start);
  }
  if (rest.length > 0) yield rest;
}

// A JSON array is cut into its elements by a byte scanner that tracks strings and nesting, so
// one element at a time is parsed and a file larger than memory streams through.
async function* readJsonArray(file: string, stream: NodeJS.ReadableStream): AsyncGenerator<RawRow> {
  let depth = 0; // nesting, counting the outer array as 1
  let inString = false;
  let escaped = false;
  let line = 1;
  let index = 0;
  let elementLine = 1;
  let parts: Buffer[] = [];
  let partStart = -1; // start of the current element in this chunk, or -1

  const finish = function* (chunk: Buffer, end: number): Generator<RawRow> {
    if (partStart >= 0) parts.push(chunk.subarray(partStart, end));
    const bytes = Buffer.concat(parts);
    parts = [];
    partStart = -1;
    const where = `${file} [row ${index}] (line ${elementLine})`;
    index++;
    const text = decodeUtf8(bytes, where);
    if (text instanceof DpoError) yield { where, error: text };
    else if (text.trim() !== '') yield parseJson(text, where);
  };

  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (depth >= 1 && partStart < 0 && parts.length > 0) partStart = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === 0x0a) line++;
      if (inString) {
        if (escaped) escaped = false;
        else if (b === 0x5c) escaped = true;
        else if (b === 0x22) inString = false;
        continue;
      }
      if (depth === 0) {
        if (b === 0x5b) depth = 1;
        continue;
      }
      // Inside the outer array: an element starts at its first non-blank byte.
      if (depth === 1 && partStart < 0 && parts.length === 0) {
        if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09 || b === 0x2c) continue;
        if (b === 0x5d) {
          depth = 0;
          continue;
        }
        partStart = i;
        elementLine = line;
      }
      if (b === 0x22) inString = true;
      else if (b === 0x7b || b === 0x5b) depth++;
      else if (depth > 1 && (b === 0x7d || b === 0x5d)) depth--;
      else if (depth === 1 && (b === 0x2c || b === 0x5d)) {
        yield* finish(chunk, i);
        if (b === 0x5d) depth = 0;
      }
    }
    if (partStart >= 0) {
      parts.push(chunk.subarray(partStart));
      partStart = -1;
    }
  }
  if (parts.length > 0 || depth !== 0) {
    yield {
      where: `${file} [row ${index}] (line ${elementLine})`,
      error: dataError(
        `${file} [row ${index}] (line ${elementLine})`,
        'the array to close with ]',
        'the end of the file',
        'the file is cut short; restore it',
      ),
    };
  }
}

// Parquet: read one row group at a time with hyparquet (pure JavaScript).
async function* readParquet(file: string): AsyncGenerator<RawRow> {
  // hyparquet is an ES module; Node 20.17+ loads it with require().
  const { parquetMetadataAsync, parquetReadObjects } =
    require('hyparquet') as typeof import('hyparquet');
  const fh = await fs.promises.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const buffer = {
      byteLength: size,
      async slice(start: number, end?: number): Promise<ArrayBuffer> {
        const stop = end ?? size;
        const out = Buffer.alloc(stop - start);
        await fh.read(out, 0, out.length, start);
        return out.buffer.slice(out.byteOffset, out.byteOffset + out.length) as ArrayBuffer;
      },
    };
    let metadata;
    try {
      metadata = await parquetMetadataAsync(buffer);
    } catch (err) {
      throw new DpoError(
        'ERR_DPO_DATA',
        `${file}: expected a Parquet file, got ${(err as Error).message}; check the file is complete`,
      );
    }
    let rowStart = 0;
    for (const group of metadata.row_groups) {
      const rowEnd = rowStart + Number(group.num_rows);
      const rows = await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd });
      for (let i = 0; i < rows.length; i++)
        yield { where: `${file} [row ${rowStart + i}]`, value: rows[i] };
      rowStart = rowEnd;
    }
  } finally {
    await fh.close();
  }
}
