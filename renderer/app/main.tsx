import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { connectStore } from './connect.ts';
import './styles.css';

connectStore();
const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(<App />);
