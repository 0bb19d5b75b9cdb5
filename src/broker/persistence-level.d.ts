// aedes-persistence-level ships no types. It returns an aedes-persistence instance (async API with
// callback twins); broker.ts hands it to aedes as-is and only calls destroy() itself.
declare module 'aedes-persistence-level' {
  export interface LevelPersistence {
    destroy(): Promise<void>;
  }
  const factory: (db: unknown) => LevelPersistence;
  export default factory;
}
