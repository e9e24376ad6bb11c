// node-dpo's own tensor typings: a shape, a dtype and a typed array, as the addon returns them.

export type DType = 'float32' | 'int32' | 'int64' | 'uint8';

export interface TypedArrayOf {
  float32: Float32Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
}

export interface Tensor<D extends DType = DType> {
  readonly shape: readonly number[];
  readonly dtype: D;
  readonly data: TypedArrayOf[D];
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Row-major flat index of `index` in a tensor of `shape`. */
export function flatIndex(shape: readonly number[], index: readonly number[]): number {
  let flat = 0;
  for (let i = 0; i < shape.length; i++) flat = flat * shape[i] + index[i];
  return flat;
}
