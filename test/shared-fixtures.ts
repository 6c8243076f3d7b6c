// The shared fixtures folder: ../shared beside the checkout (VSWIN_SHARED names another one).
import { fileURLToPath } from 'node:url';

export const SHARED_DIR = process.env.VSWIN_SHARED ?? fileURLToPath(new URL('../../shared/', import.meta.url));
export const PARITY_DIR = `${SHARED_DIR}fixtures/parity`;
export const MMACTION2_DIR = process.env.VSWIN_MMACTION2_FIXTURES ?? `${SHARED_DIR}fixtures/mmaction2-1x`;
