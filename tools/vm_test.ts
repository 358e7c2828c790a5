import { assertEquals } from "@std/assert";
import { pickHistory } from "./vm.ts";

Deno.test("pickHistory: the newest run with the most cases, none without cases", () => {
  const runs = [
    { path: "/r/5-filtered/junit.xml", tests: 1 },
    { path: "/r/4-full/junit.xml", tests: 926 },
    { path: "/r/3-full/junit.xml", tests: 926 },
    { path: "/r/2-bigger-old/junit.xml", tests: 925 },
  ];
  assertEquals(pickHistory(runs), "/r/4-full/junit.xml");
  assertEquals(pickHistory(runs.slice(0, 1)), "/r/5-filtered/junit.xml");
  assertEquals(pickHistory([]), undefined);
  assertEquals(pickHistory([{ path: "/r/x", tests: 0 }]), undefined);
});
