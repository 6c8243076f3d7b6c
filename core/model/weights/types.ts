// Tensors held in host memory, as read from or written to checkpoint files.

export type HostDtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/**
 * A tensor in host memory. Floating tensors are always decoded to Float32Array (their file dtype is
 * kept in `fileDtype`); integer tensors to Int32Array when every value fits, else the reader fails
 * with a clear error naming the key.
 */
export interface HostTensor {
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
  /** dtype of `data`. */
  dtype: 'float32' | 'int32' | 'bool';
  /** dtype as stored in the file. */
  fileDtype: HostDtype;
}

/** Ordered name -> tensor map (insertion order = file order). */
export type TensorMap = Map<string, HostTensor>;
