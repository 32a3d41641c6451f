import { mount } from 'svelte';
import App from './App.svelte';
import { milestone } from './lib/ready';
import './app.css';

milestone('script evaluated');
// Styles that differ by platform (the font) key on this.
if (/linux/i.test(navigator.platform)) document.documentElement.dataset.platform = 'linux';
const app = mount(App, { target: document.getElementById('app')! });
milestone('app mounted');
export default app;
