import { assertEquals } from "@std/assert";
import { readText } from "../../ffi/sys.ts";
import { parseConfig, parseFragment } from "./kernel.ts";

Deno.test("kernel: the fragment's requested options parse", () => {
  const text = readText(
    new URL("../../fixtures/kernel/iommufd-guest.config", import.meta.url)
      .pathname,
  );
  const { on, off } = parseFragment(text);
  for (
    const need of [
      "IOMMUFD",
      "IOMMUFD_TEST",
      "FAULT_INJECTION",
      "FAULT_INJECTION_DEBUG_FS",
      "FAILSLAB",
      "FAIL_PAGE_ALLOC",
      "VFIO",
      "VFIO_GROUP",
      "VFIO_DEVICE_CDEV",
      "IOMMUFD_VFIO_CONTAINER",
      "VFIO_PCI",
      "VFIO_MDEV",
      "SAMPLE_VFIO_MDEV_MTTY",
      "VIRTIO_IOMMU",
      "INTEL_IOMMU",
      "IRQ_REMAP",
      "HUGETLBFS",
      "TRANSPARENT_HUGEPAGE",
      "NET_9P",
      "NET_9P_VIRTIO",
      "9P_FS",
    ]
  ) {
    assertEquals(on.includes(need), true, `fragment lacks CONFIG_${need}=y`);
  }
  assertEquals(off.includes("VFIO_CONTAINER"), true);
  assertEquals(on.some((s) => off.includes(s)), false);
});

Deno.test("kernel: .config values parse", () => {
  const m = parseConfig(
    'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\nCONFIG_D="x"\n',
  );
  assertEquals([m.get("A"), m.get("B"), m.get("C"), m.get("D")], [
    "y",
    undefined,
    "m",
    '"x"',
  ]);
});

Deno.test("vm: kernel WARN lines of 6.12 and 7.x dmesg are found", async () => {
  const { kernelWarnings } = await import("../vm.ts");
  const dmesg = [
    "[    8.631156] ------------[ cut here ]------------",
    "[    8.631330] WARNING: drivers/iommu/generic_pt/fmt/../iommu_pt.h:933 at amdv1_mock_map_range+0x2db/0x300, CPU#1: deno/108",
    "[    9.000000] WARNING: CPU: 0 PID: 91 at drivers/iommu/iommufd/pages.c:100 x+0x1/0x2",
    "[    9.1] iommufd: not a warning",
  ].join("\n");
  assertEquals(kernelWarnings(dmesg), [
    "WARNING: drivers/iommu/generic_pt/fmt/../iommu_pt.h:933 at amdv1_mock_map_range+0x2db/0x300, CPU#1: deno/108",
    "WARNING: CPU: 0 PID: 91 at drivers/iommu/iommufd/pages.c:100 x+0x1/0x2",
  ]);
});
