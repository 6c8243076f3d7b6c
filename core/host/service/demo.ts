// The demo is one recipe for both doors: core/app/demo.ts. Re-exported for code that imports it here.
export {
  DEMO_NAME,
  demoDataset,
  demoFolder,
  demoRunConfig,
  ensureDemoDataset,
  microRunConfig,
  type DemoOptions,
} from '../../app/demo.ts';
