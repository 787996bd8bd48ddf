import { afterEach, describe, expect, it, vi } from "vitest";

// A bundle or install that lost one of the lazily loaded chunks: the call that
// needs it rejects with a DesError (DES_IO) naming what is missing, not a raw
// module-loader error; and the next call tries again.
afterEach(() => {
  vi.doUnmock("../src/format/meta-codec.js");
  vi.resetModules();
});

describe("a lazily loaded module that cannot be loaded", () => {
  it("the meta codec: loadMetaCodec rejects with DES_IO, then loads once the module is back", async () => {
    vi.resetModules();
    vi.doMock("../src/format/meta-codec.js", () => {
      throw new Error("Cannot find module './meta-codec.js'");
    });
    const meta = await import("../src/format/meta.js");
    await expect(meta.loadMetaCodec()).rejects.toMatchObject({
      code: "DES_IO",
      message: expect.stringMatching(/^cannot load des-pack.s meta codec module/),
    });
    expect(meta.metaCodecReady()).toBe(false);
    vi.doUnmock("../src/format/meta-codec.js");
    await meta.loadMetaCodec();
    expect(meta.metaCodecReady()).toBe(true);
  });
});
