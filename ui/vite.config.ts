/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';

// Tauri serves the built files from `dist/`; in development it loads the dev server below.
export default defineConfig(({ mode }) => ({
  plugins: [svelte(), svelteTesting()],
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  // WebKitGTK on current Debian supports ES2021; Safari 15 is the matching macOS floor.
  build: { target: ['es2021', 'safari15'], outDir: 'dist', emptyOutDir: true },
  // Component tests run Svelte's browser build in jsdom.
  resolve: mode === 'test' ? { conditions: ['browser'] } : undefined,
  test: {
    environment: 'jsdom',
    setupFiles: ['src/test/setup.ts'],
    include: ['src/**/*.test.ts'],
  },
}));
