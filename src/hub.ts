// Resolves model names as on the Hugging Face hub ("gpt2", "openai-community/gpt2") to the
// user's local Hugging Face cache, the same files transformers would use. Never downloads.
import fs from 'fs';
import os from 'os';
import path from 'path';
import { DpoError } from './errors';

// Hub names that moved under openai-community; the cache may hold either spelling.
const LEGACY = new Set(['gpt2', 'gpt2-medium', 'gpt2-large', 'gpt2-xl', 'distilgpt2']);

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  const home =
    env.HF_HOME ??
    path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

export function looksLikeHubId(name: string): boolean {
  return (
    /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(name) && !name.startsWith('.') && !name.includes('..')
  );
}

/**
 * The snapshot folder of a cached repo (`models--ORG--NAME` or `datasets--ORG--NAME`) at a
 * revision; without refs/main, the newest snapshot (holding config.json for models).
 */
export function snapshotOf(
  repoDir: string,
  revision = 'main',
  kind: 'models' | 'datasets' = 'datasets',
): string | null {
  if (!fs.existsSync(repoDir)) return null;
  const snapshots = path.join(repoDir, 'snapshots');
  const ref = path.join(repoDir, 'refs', revision);
  const commit = fs.existsSync(ref) ? fs.readFileSync(ref, 'utf8').trim() : revision;
  const wanted = path.join(snapshots, commit);
  if (fs.existsSync(wanted)) return wanted;
  if (revision !== 'main') return null;
  // No refs/main: accept the only snapshot, or the newest one that looks complete.
  const dirs = fs.existsSync(snapshots)
    ? fs.readdirSync(snapshots).map((d) => path.join(snapshots, d))
    : [];
  const complete = dirs.filter(
    (d) => kind === 'datasets' || fs.existsSync(path.join(d, 'config.json')),
  );
  complete.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  return complete[0] ?? null;
}

/**
 * The snapshot folder of a hub repo in the local cache, or a DpoError saying it is not cached
 * and how to fetch it.
 */
export function resolveHubSnapshot(
  id: string,
  kind: 'models' | 'datasets' = 'models',
  revision = 'main',
  env: NodeJS.ProcessEnv = process.env,
): string {
  const cache = hubCacheDir(env);
  const names = [id];
  if (kind === 'models' && LEGACY.has(id)) names.push(`openai-community/${id}`);
  if (kind === 'models' && id.startsWith('openai-community/'))
    names.push(id.slice('openai-community/'.length));
  for (const name of names) {
    const dir = path.join(cache, `${kind}--${name.replace(/\//g, '--')}`);
    const snap = snapshotOf(dir, revision, kind);
    if (snap) return snap;
  }
  const cli =
    kind === 'models'
      ? `huggingface-cli download ${id}`
      : `huggingface-cli download --repo-type dataset ${id}`;
  throw new DpoError(
    'ERR_DPO_NOT_FOUND',
    `${id} is neither a local folder nor in the Hugging Face cache (${cache}); node-dpo never downloads. ` +
      `Fetch it on a machine with network access (\`${cli}\`, or transformers' from_pretrained) and set ` +
      'HF_HOME or HF_HUB_CACHE to that cache, or pass a local folder path',
  );
}
