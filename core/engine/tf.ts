// The one place that imports TensorFlow.js, so every module shares one engine instance.
import * as tf from '@tensorflow/tfjs';

export { tf };
export type Tensor = tf.Tensor;
export type Variable = tf.Variable;
