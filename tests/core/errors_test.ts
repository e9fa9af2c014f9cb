/** Unit tests of lib/core/errors.ts: which PostgreSQL errors are about a row, safe messages. */
import assert from "node:assert/strict";
import { explainError, isRowError } from "../../lib/core/errors.ts";

Deno.test.sanitizer({ ops: true, resources: true });

function pgError(code: string): Error {
  return Object.assign(new Error(`error ${code}`), {
    name: "PostgresError",
    code,
  });
}

Deno.test("isRowError() accepts only data exceptions and integrity violations", async (t) => {
  for (const code of ["22003", "22P02", "22P05", "23505", "23514", "54000"]) {
    await t.step(`${code} is about a row`, () => {
      assert.equal(isRowError(pgError(code)), true);
    });
  }
  for (
    const code of [
      "55P03", // lock timeout
      "42501", // permission denied
      "42703", // undefined column
      "42P01", // undefined table
      "XX000", // internal error
      "25006", // read-only transaction
      "57014", // statement timeout
      "08006", // connection failure
      "53300", // too many connections
      "40001", // serialization failure
      "54001", // statement too complex
    ]
  ) {
    await t.step(`${code} is about the database`, () => {
      assert.equal(isRowError(pgError(code)), false);
    });
  }
  await t.step("errors that are not PostgreSQL's are not about a row", () => {
    assert.equal(isRowError(new Error("x")), false);
    assert.equal(
      isRowError(Object.assign(new Error("x"), { code: "22003" })),
      false,
    );
    assert.equal(isRowError(undefined), false);
  });
});

Deno.test("explainError() names the error and masks passwords", () => {
  const err = Object.assign(
    new Error(
      "cannot reach postgres://app:s3cret@db:5432/x (password=hunter2)",
    ),
    { code: "ECONNREFUSED" },
  );
  const text = explainError(err);
  assert.match(
    text,
    /^Error \(ECONNREFUSED\): cannot reach postgres:\/\/app:\*\*\*@db/,
  );
  assert.ok(!text.includes("s3cret"));
  assert.ok(!text.includes("hunter2"));
});
