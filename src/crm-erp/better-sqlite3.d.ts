/**
 * Minimal typings for the parts of better-sqlite3 the built-in CRM/ERP uses
 * (the project does not depend on @types/better-sqlite3).
 */
declare module 'better-sqlite3' {
  namespace Database {
    interface RunResult { changes: number; lastInsertRowid: number | bigint }
    interface Statement<R = Record<string, any>> {
      run(...params: unknown[]): RunResult;
      get(...params: unknown[]): R | undefined;
      all(...params: unknown[]): R[];
    }
    interface Database {
      readonly open: boolean;
      readonly name: string;
      readonly memory: boolean;
      prepare<R = Record<string, any>>(sql: string): Statement<R>;
      exec(sql: string): Database;
      pragma(source: string, options?: { simple?: boolean }): unknown;
      transaction<F extends (...args: any[]) => any>(fn: F): F & { immediate: F; deferred: F; exclusive: F };
      close(): Database;
    }
    interface Options { readonly?: boolean; fileMustExist?: boolean; /** ms to wait on a locked database. @defaultValue 5000 */ timeout?: number }
  }
  interface DatabaseConstructor {
    new (filename?: string, options?: Database.Options): Database.Database;
    (filename?: string, options?: Database.Options): Database.Database;
  }
  const Database: DatabaseConstructor;
  export = Database;
}
