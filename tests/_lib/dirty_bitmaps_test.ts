import { assertEquals } from "@std/assert";
import { testBit } from "./iommufd_utils.ts";
import { periodicBits } from "./dirty_bitmaps.ts";

Deno.test("dirty_bitmaps: periodicBits sets bit k when k % period < ones, bit by bit", () => {
  for (const period of [1, 2, 3, 8, 12, 16, 1024]) {
    for (const ones of [0, 1, Math.ceil(period / 2), period]) {
      for (const nbits of [0, 1, 7, 8, 9, 100, 4099]) {
        const got = periodicBits({ nbits, period, ones });
        assertEquals(got.length, Math.ceil(nbits / 8));
        for (let k = 0; k < got.length * 8; k++) {
          const want = k < nbits && k % period < ones;
          if (testBit(got, k) !== want) {
            throw new Error(
              `period ${period} ones ${ones} nbits ${nbits}: bit ${k} is ${!want}`,
            );
          }
        }
      }
    }
  }
});
