// Types of compile-cache.js (plain JavaScript: it runs before any TypeScript loads).
export function compileCacheDir(env?: NodeJS.ProcessEnv, uid?: number): string | undefined;
export function enableCompileCache(env?: NodeJS.ProcessEnv): void;
