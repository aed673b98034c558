// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PCI_CACHE_LINE_SIZE_OFFSET,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
} from '../../abi/pci-regs.js';
import { ConfigImageBuilder, SimulatedFunction } from '../../devices/index.js';
import { isPcibackError } from '../../errors.js';
import { PciAddress } from '../../pci/index.js';
import { SimHostPciDevice } from '../../platform/sim/pci-core.js';
import type { SimPciHostEntry } from '../../platform/sim/sim-pci-host.js';
import { domId } from '../../platform/types.js';
import { PcibackDevice } from '../device/index.js';
import { PciStubError } from './errors.js';
import { HideSyntaxError } from './hide.js';
import type { PciStubDeviceFactory } from './device-factory.js';
import { PciStub } from './pci-stub.js';
import {
  GUEST,
  buildTestMachine,
  type TestMachine,
  type TestMachineDevice,
} from './test-machine.js';

const A = (text: string): PciAddress => PciAddress.parse(text);
const NVME = A('0000:00:02.0');
const XHCI = A('0000:00:14.0');
const GPU = A('0000:01:00.0');
const AUDIO = A('0000:01:00.1');
const PORT = A('0000:00:1c.0');

const DEVICES: readonly TestMachineDevice[] = [
  { bdf: '0000:00:02.0', model: 'nvme' },
  { bdf: '0000:00:14.0', model: 'xhci' },
  { bdf: '0000:00:1c.0', model: 'root-port', secondaryBus: 1 },
  { bdf: '0000:01:00.0', model: 'gpu' },
];

function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

/** Run `body` on a fresh machine, always closed. */
function withMachine(
  options: Parameters<typeof buildTestMachine>[1],
  body: (m: TestMachine) => void,
  devices: readonly TestMachineDevice[] = DEVICES,
): void {
  const m = buildTestMachine(devices, options);
  try {
    body(m);
  } finally {
    m.close();
  }
}

function stubError(code: string, errno: number): (err: unknown) => boolean {
  return (err) => err instanceof PciStubError && err.code === code && err.errno === errno;
}

/** A CardBus bridge (header type 2). */
function cardbus(bdf: string): SimPciHostEntry {
  const image = new ConfigImageBuilder(256).identity({
    vendorId: 0x1180,
    deviceId: 0x0476,
    revision: 0,
    classCode: 0x060700,
    headerType: 2,
  });
  const address = A(bdf);
  const hw = new SimulatedFunction(image.build());
  return {
    address,
    host: new SimHostPciDevice(hw, { address, irq: 0 }),
    originalDriver: 'yenta_cardbus',
  };
}

describe('PciStub: seizing (spec §6.1, §6.2)', () => {
  test('hide= functions are seized when the stub registers; the rest go to their dom0 drivers', () => {
    withMachine({ hide: '(0000:00:02.0) (00:14.*)' }, (m) => {
      assert.equal(m.pci.info(NVME)?.driver, 'pciback');
      assert.equal(m.pci.info(XHCI)?.driver, 'pciback');
      assert.equal(m.pci.info(GPU)?.driver, 'nouveau');
      assert.equal(m.stub.size, 2);
      assert.deepEqual(
        m.stub.list().map((e) => [e.address.toString(), e.user]),
        [
          ['0000:00:02.0', null],
          ['0000:00:14.0', null],
        ],
      );
      assert.equal(m.stub.slots().split('\n').length - 1, 9);
      // init_device: reset with the ladder, state restored, left disabled.
      assert.equal(m.hw('0000:00:02.0').resetCounts().flr, 1);
      assert.equal(m.hw('0000:00:14.0').resetCounts().pm, 1);
      assert.equal(m.host('0000:00:02.0').isEnabled(), false);
      assert.deepEqual(m.stub.resetRecord(NVME), {
        state: 'method',
        method: 'flr',
        atMs: 1000,
        skipped: [],
      });
      assert.equal(m.stub.resetRecord(GPU), undefined);
    });
  });

  test('a function behind a hidden bridge is seized through the bridge', () => {
    withMachine({ hide: '(00:1c.0)' }, (m) => {
      assert.equal(m.pci.info(PORT)?.driver, 'pciback', 'the bridge itself (header type 1)');
      assert.equal(m.pci.info(GPU)?.driver, 'pciback');
      assert.equal(m.pci.info(AUDIO)?.driver, 'pciback');
      assert.equal(m.stub.slots(), '0000:00:1c.0\n', 'only the bridge is listed');
      assert.equal(m.pci.info(NVME)?.driver, 'nvme');
    });
  });

  test('driver_override "pciback" seizes an unlisted function and lists its address', () => {
    withMachine({}, (m) => {
      assert.equal(m.pci.info(NVME)?.driver, 'nvme');
      m.pci.setDriverOverride(NVME, 'pciback');
      m.pci.unbind(NVME);
      m.pci.probe(NVME);
      assert.equal(m.pci.info(NVME)?.driver, 'pciback');
      assert.ok(m.stub.get(NVME) !== undefined);
      assert.equal(m.stub.slots(), '0000:00:02.0\n');
    });
  });

  test('an unlisted function is not taken, and a CardBus bridge is refused even when listed', () => {
    withMachine({ hide: '(00:07.0)', extra: [cardbus('0000:00:07.0')] }, (m) => {
      assert.equal(m.stub.probe(NVME), false);
      m.stub.newSlot('00:02.0');
      assert.equal(m.stub.probe(NVME), false, 'bound to nvme: never taken behind its back');
      assert.equal(m.stub.get(NVME), undefined);
      assert.equal(m.pci.info(A('0000:00:07.0'))?.driver, 'yenta_cardbus');
      assert.equal(m.stub.get(A('0000:00:07.0')), undefined);
      assert.ok(
        m.logger
          .at('error')
          .some((r) => /normal \(0\) or bridge \(1\) header type \(it has 2\)/.test(r.msg ?? '')),
      );
    });
  });

  test('a factory that cannot open the function, or throws, leaves it unbound', () => {
    const failing =
      (inner: PciStubDeviceFactory): PciStubDeviceFactory =>
      (a) => {
        if (a.equals(NVME)) return undefined;
        if (a.equals(XHCI)) throw new Error('no virtualizer');
        return inner(a);
      };
    withMachine({ hide: '(00:02.0)(00:14.0)', factory: failing, bindDom0Drivers: false }, (m) => {
      assert.equal(m.pci.info(NVME)?.driver, null);
      assert.equal(m.pci.info(XHCI)?.driver, null);
      assert.equal(m.stub.size, 0);
      assert.equal(m.logger.at('error').length, 2);
    });
  });

  test('a hide= value that does not parse fails the start', () => {
    withMachine({}, (m) => {
      assert.throws(
        () =>
          new PciStub(m.pci, {
            factory: () => undefined,
            owners: m.interrupts.owners,
            hide: '(0000:82.0.0)',
          }),
        HideSyntaxError,
      );
    });
  });
});

describe('PciStub: new_slot, remove_slot, slots (spec §6.5)', () => {
  test('new_slot adds (wildcards expand, duplicates do not), bind then seizes; remove_slot unbinds nothing', () => {
    withMachine({}, (m) => {
      m.stub.newSlot('0000:00:02.0\n');
      m.stub.newSlot('00:02.0');
      m.stub.newSlot('0000:01:00.*');
      assert.equal(m.stub.slots().split('\n')[0], '0000:00:02.0');
      assert.equal(m.stub.slotList().length, 9);
      m.pci.unbind(NVME);
      m.pci.bind(NVME, 'pciback');
      assert.ok(m.stub.get(NVME) !== undefined);
      m.stub.removeSlot('0000:00:02.0');
      assert.equal(m.pci.info(NVME)?.driver, 'pciback', 'still bound');
      m.stub.removeSlot('01:*.*');
      assert.equal(m.stub.slots(), '');
    });
  });

  test('errors: -EINVAL for bad text, -ENOENT when remove_slot matches nothing', () => {
    withMachine({}, (m) => {
      assert.throws(
        () => {
          m.stub.newSlot('0000:03:00');
        },
        stubError('STUB_INVALID_ARGUMENT', -22),
      );
      assert.throws(
        () => {
          m.stub.newSlot('0000:03:00.9');
        },
        stubError('STUB_INVALID_ARGUMENT', -22),
      );
      assert.throws(
        () => {
          m.stub.removeSlot('nonsense');
        },
        stubError('STUB_INVALID_ARGUMENT', -22),
      );
      assert.throws(
        () => {
          m.stub.removeSlot('0000:03:00.0');
        },
        stubError('NO_SUCH_SLOT', -2),
      );
    });
  });
});

describe('PciStub: claim and release (spec §6.3)', () => {
  test('claim() hands a seized device to one connection; release() resets it, restores the seize-time state and frees it', () => {
    withMachine({ hide: '(00:02.0)' }, (m) => {
      const hw = m.hw('0000:00:02.0');
      const cacheLine = hw.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1);
      assert.equal(m.stub.claim(A('0000:00:14.0'), GUEST), undefined, 'not seized');
      const dev = must(m.stub.claim(NVME, GUEST));
      assert.equal(m.stub.claim(NVME, domId(6)), undefined, 'in use');
      assert.equal(m.stub.userOf(NVME), GUEST);
      m.interrupts.owners.register(NVME, GUEST);
      // The guest enables decoding and bus mastering, and writes the cache line size.
      assert.equal(
        dev.config.write(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER),
        0,
      );
      assert.equal(dev.config.write(PCI_CACHE_LINE_SIZE_OFFSET, 1, 0x20), 0);
      assert.equal(hw.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1), 0x20);
      assert.notEqual(hw.configRead(PCI_COMMAND_OFFSET, 2) & PCI_COMMAND_MASTER, 0);
      const flrs = hw.resetCounts().flr;

      m.stub.release(dev);
      assert.equal(hw.resetCounts().flr, flrs + 1, 'reset through the ladder (FLR)');
      assert.equal(
        hw.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1),
        cacheLine,
        "the guest's write is undone",
      );
      const command = hw.configRead(PCI_COMMAND_OFFSET, 2);
      assert.notEqual(command & PCI_COMMAND_MEMORY, 0, 'decode as at seize time');
      assert.equal(command & PCI_COMMAND_MASTER, 0, 'bus mastering off');
      assert.equal(m.host('0000:00:02.0').isEnabled(), false);
      assert.equal(m.stub.userOf(NVME), null);
      assert.equal(m.interrupts.owners.find(NVME), undefined, 'owner unregistered');
      assert.equal(m.stub.resetRecord(NVME)?.state, 'method');
      assert.equal(m.stub.claim(NVME, domId(6)), dev, 'free for the next guest');
    });
  });

  test('XSA-120 follow-up: the backend never writes 0 to the command register on release', () => {
    withMachine({ hide: '(00:02.0)' }, (m) => {
      const hw = m.hw('0000:00:02.0');
      const dev = must(m.stub.claim(NVME, GUEST));
      assert.equal(
        dev.config.write(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER),
        0,
      );
      const commandWrites: number[] = [];
      const write = hw.configWrite.bind(hw);
      hw.configWrite = (byteOffset, sizeBytes, value) => {
        if (byteOffset === PCI_COMMAND_OFFSET) commandWrites.push(value & 0xffff);
        write(byteOffset, sizeBytes, value);
      };
      m.stub.release(dev);
      assert.ok(commandWrites.length > 0, 'the restore wrote the command register');
      assert.ok(
        commandWrites.every((v) => (v & PCI_COMMAND_MEMORY) !== 0),
        `command writes keep decode: ${commandWrites.map((v) => v.toString(16)).join(',')}`,
      );
      assert.notEqual(hw.configRead(PCI_COMMAND_OFFSET, 2), 0);
    });
  });

  test('release() turns off MSI-X and unmaps its vectors from the guest', () => {
    withMachine({ hide: '(00:02.0)' }, (m) => {
      const { domid } = m.xen.createDomain({ memoryPages: 8, name: 'guest' });
      const dev = must(m.stub.claim(NVME, domid));
      m.interrupts.owners.register(NVME, domid);
      assert.equal(dev.config.write(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY), 0);
      const msi = must(m.interrupts.msiControl(NVME));
      assert.ok(msi.enableMsix([0, 1]).ok);
      assert.equal(msi.mappedDomain(), domid);
      m.stub.release(dev);
      assert.equal(msi.msixEnabled(), false);
      assert.equal(msi.mappedDomain(), undefined);
      assert.equal(m.host('0000:00:02.0').irq(), m.host('0000:00:02.0').legacyIrq);
    });
  });

  test('release() only warns for a device it does not hold or that nobody claimed', () => {
    withMachine({ hide: '(00:02.0)' }, (m) => {
      const dev = must(m.stub.get(NVME));
      const flrs = m.hw('0000:00:02.0').resetCounts().flr;
      m.stub.release(dev);
      const other = buildTestMachine([{ bdf: '0000:00:02.0', model: 'nvme' }], {
        hide: '(00:02.0)',
      });
      try {
        m.stub.release(must(other.stub.get(NVME)));
      } finally {
        other.close();
      }
      assert.equal(m.logger.at('warn').filter((r) => /Cannot release/.test(r.msg ?? '')).length, 2);
      assert.equal(m.hw('0000:00:02.0').resetCounts().flr, flrs, 'nothing was reset');
    });
  });

  test('quirk fields and allow_interrupt_control last one attachment', () => {
    withMachine({ hide: '(00:02.0)' }, (m) => {
      const dev = must(m.stub.claim(NVME, GUEST));
      m.stub.addQuirk('0000:00:02.0-e0:4:ffffffff');
      m.stub.setAllowInterruptControl('00:02.0');
      assert.deepEqual(dev.config.quirkFields(), [
        { byteOffset: 0xe0, sizeBytes: 4, mask: 0xffffffff },
      ]);
      assert.equal(m.stub.allowInterruptControl(), '0000:00:02.0\n');
      m.stub.release(dev);
      assert.deepEqual(dev.config.quirkFields(), []);
      assert.equal(dev.config.policy.allowInterruptControl, false);
      assert.equal(m.stub.allowInterruptControl(), '');
    });
  });
});

describe('PciStub: permissive, device-wide and per attachment', () => {
  test('claim(..., { permissive: true }) lasts until release', () => {
    withMachine({ hide: '(00:02.0)' }, (m) => {
      const dev = must(m.stub.claim(NVME, GUEST, { permissive: true }));
      assert.equal(dev.config.policy.permissive, true);
      assert.equal(m.stub.permissive(), '0000:00:02.0\n');
      assert.equal(m.stub.list()[0]?.permissive, 'attachment');
      m.stub.release(dev);
      assert.equal(dev.config.policy.permissive, false);
      assert.equal(m.stub.permissive(), '');
      assert.equal(m.stub.list()[0]?.permissive, 'off');
    });
  });

  test('scope "attachment" on a free device waits for the next claim and ends with it', () => {
    withMachine({ hide: '(00:02.0)' }, (m) => {
      m.stub.setPermissive('0000:00:02.0', { scope: 'attachment' });
      const dev = must(m.stub.get(NVME));
      assert.equal(dev.config.policy.permissive, false);
      assert.equal(m.stub.list()[0]?.permissive, 'next-attachment');
      m.stub.claim(NVME, GUEST);
      assert.equal(dev.config.policy.permissive, true);
      m.stub.release(dev);
      assert.equal(dev.config.policy.permissive, false);
      m.stub.claim(NVME, GUEST);
      assert.equal(dev.config.policy.permissive, false, 'only one attachment');
      m.stub.setPermissive('0000:00:02.0', { scope: 'attachment' });
      assert.equal(dev.config.policy.permissive, true, 'applies now to the current guest');
    });
  });

  test('device-wide permissive is never cleared and warns once', () => {
    withMachine({ hide: '(00:02.0)' }, (m) => {
      const dev = must(m.stub.claim(NVME, GUEST, { permissive: true }));
      m.stub.setPermissive('0000:00:02.0');
      m.stub.setPermissive('0000:00:02.0');
      m.stub.release(dev);
      assert.equal(dev.config.policy.permissive, true);
      assert.equal(m.stub.list()[0]?.permissive, 'device');
      const warnings = m.logger.at('warn').map((r) => r.msg);
      assert.deepEqual(
        warnings.filter((w) => /permissive mode/.test(w ?? '')),
        [
          'enabling permissive mode configuration space accesses!',
          'permissive mode is potentially unsafe!',
        ],
      );
    });
  });
});

describe('PciStub: attribute errors and listings (spec §6.5)', () => {
  test('permissive and allow_interrupt_control: -EINVAL for bad text, -ENODEV unless one seized device is named', () => {
    withMachine({ hide: '(00:02.0)' }, (m) => {
      for (const set of [
        (t: string) => {
          m.stub.setPermissive(t);
        },
        (t: string) => {
          m.stub.setAllowInterruptControl(t);
        },
      ]) {
        assert.throws(
          () => {
            set('0000:00:02');
          },
          stubError('STUB_INVALID_ARGUMENT', -22),
        );
        assert.throws(
          () => {
            set('0000:00:14.0');
          },
          stubError('NOT_SEIZED', -19),
        );
        assert.throws(
          () => {
            set('0000:00:02.*');
          },
          stubError('NOT_SEIZED', -19),
          'a wildcard never names a device',
        );
      }
      assert.equal(m.stub.permissive(), '');
    });
  });

  test('quirks: -EINVAL for syntax, register, mask and size; -ENODEV for a device not seized', () => {
    withMachine({ hide: '(00:02.0)' }, (m) => {
      const einval = stubError('STUB_INVALID_ARGUMENT', -22);
      for (const text of [
        '0000:00:02.0',
        '0000:00:02.0-e0:4',
        '0000:00:02.0-1000:4:ff',
        '0000:00:02.0-e0:1:1ff',
        '0000:00:02.0-e0:3:ff',
        'zz:00.0-e0:4:ff',
      ]) {
        assert.throws(
          () => {
            m.stub.addQuirk(text);
          },
          einval,
          text,
        );
      }
      assert.throws(
        () => {
          m.stub.addQuirk('0000:00:14.0-e0:4:ff');
        },
        stubError('NOT_SEIZED', -19),
      );
      assert.throws(
        () => {
          m.stub.addQuirk('0000:00:14.0-e0:3:ff');
        },
        stubError('NOT_SEIZED', -19),
        'the size is checked after the lookup, as in the original',
      );
      m.stub.addQuirk('00:02.0-300:2:ffff');
      m.stub.addQuirk('00:02.0-0:2:ffff'); // the vendor ID field is there: silently dropped
      assert.deepEqual(must(m.stub.get(NVME)).config.quirkFields(), [
        { byteOffset: 0x300, sizeBytes: 2, mask: 0xffff },
      ]);
    });
  });

  test('quirks read: BB:SS.F, the IDs, then every config field as offset:size:mask', () => {
    withMachine({ hide: '(00:02.0)(00:14.0)' }, (m) => {
      m.stub.addQuirk('0000:00:14.0-e0:4:ffffffff');
      const text = m.stub.quirks();
      const lines = text.split('\n');
      const nvme = must(m.pci.info(NVME));
      const hex4 = (v: number) => v.toString(16).padStart(4, '0');
      assert.equal(lines[0], '00:02.0');
      assert.equal(
        lines[1],
        `\t${hex4(nvme.vendorId)}:${hex4(nvme.deviceId)}:${hex4(nvme.subsystemVendorId)}:${hex4(nvme.subsystemDeviceId)}`,
      );
      assert.equal(lines[1], '\t144d:a808:144d:a801');
      const nvmeFields = must(m.stub.get(NVME)).config.fields().length;
      for (const line of lines.slice(2, 2 + nvmeFields))
        assert.match(line, /^\t\t[0-9a-f]{8}:[124]:[0-9a-f]{8}$/);
      assert.equal(lines[2], '\t\t00000000:2:00000000', 'the vendor ID field comes first');
      assert.equal(lines[2 + nvmeFields], '00:14.0');
      assert.ok(lines.includes('\t\t000000e0:4:ffffffff'));
      assert.ok(text.endsWith('\n'));
    });
  });

  test('irq_handlers lists every seized device, newest first; irq_handler_state refuses what it cannot find', () => {
    withMachine({ hide: '(00:02.0)(00:14.0)' }, (m) => {
      assert.equal(
        m.stub.irqHandlers(),
        '0000:00:14.0:off:not acking:0\n0000:00:02.0:off:not acking:0\n',
      );
      assert.throws(
        () => {
          m.stub.irqHandlerState('0000:01:00.0');
        },
        stubError('STUB_NO_SUCH_DEVICE', -2),
      );
      assert.throws(
        () => {
          m.stub.irqHandlerState('0000:00:02.*');
        },
        stubError('STUB_NO_SUCH_DEVICE', -2),
      );
      assert.throws(
        () => {
          m.stub.irqHandlerState('x');
        },
        stubError('STUB_INVALID_ARGUMENT', -22),
      );
    });
  });

  test('irq_handler_state flips isr_on alone and sets ack_intr when it turns on', () => {
    withMachine({ hide: '(00:02.0)' }, (m) => {
      m.stub.irqHandlerState('0000:00:02.0');
      assert.equal(m.stub.irqHandlers(), '0000:00:02.0:on:acking:0\n');
      m.stub.irqHandlerState('0000:00:02.0');
      assert.equal(m.stub.irqHandlers(), '0000:00:02.0:off:acking:0\n');
    });
  });
});

describe('PciStub: unbind (spec §6.4)', () => {
  test('unbinding a device in use warns four times, releases it from its guest, tells the hook and frees it', () => {
    withMachine({ hide: '(00:02.0)' }, (m) => {
      const hw = m.hw('0000:00:02.0');
      const cacheLine = hw.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1);
      const dev = must(m.stub.claim(NVME, GUEST));
      m.interrupts.owners.register(NVME, GUEST);
      assert.equal(
        dev.config.write(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER),
        0,
      );
      assert.equal(dev.config.write(PCI_CACHE_LINE_SIZE_OFFSET, 1, 0x20), 0);
      const flrs = hw.resetCounts().flr;

      m.pci.unbind(NVME);
      assert.deepEqual(
        m.logger
          .at('warn')
          .map((r) => r.msg)
          .filter((msg) => msg?.startsWith('******')),
        [
          '****** removing device 0000:00:02.0 while still in-use by domain 5! ******',
          "****** driver domain may still access this device's i/o resources!",
          '****** shutdown driver domain before binding device',
          '****** to other drivers or domains',
        ],
      );
      assert.deepEqual(m.forced, [{ address: '0000:00:02.0', domid: 5 }]);
      assert.equal(m.pci.info(NVME)?.driver, null);
      assert.equal(m.stub.get(NVME), undefined);
      assert.equal(m.stub.userOf(NVME), null);
      assert.equal(m.interrupts.owners.find(NVME), undefined);
      assert.ok(hw.resetCounts().flr > flrs, 'reset on the way out');
      assert.equal(hw.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1), cacheLine);
      assert.equal(hw.configRead(PCI_COMMAND_OFFSET, 2) & PCI_COMMAND_MASTER, 0);
      assert.throws(
        () => dev.config.read(0, 4),
        (e) => isPcibackError(e, 'CONFSPACE_RELEASED'),
        'its backend state is freed',
      );
      assert.equal(m.stub.quirks(), '', 'its quirk record went');
      // The XenBus side releasing it later is only logged.
      m.stub.release(dev);
      assert.ok(m.logger.at('warn').some((r) => /not seized by the stub/.test(r.msg ?? '')));
      // Back to dom0.
      m.pci.bind(NVME, 'nvme');
      assert.equal(m.pci.info(NVME)?.driver, 'nvme');
    });
  });

  test('forget(): a device that left behind our back is dropped without touching the hardware; its guest loses it', () => {
    withMachine({ hide: '(00:02.0)' }, (m) => {
      const hw = m.hw('0000:00:02.0');
      const dev = must(m.stub.claim(NVME, GUEST));
      m.interrupts.owners.register(NVME, GUEST);
      assert.equal(dev.config.write(PCI_CACHE_LINE_SIZE_OFFSET, 1, 0x20), 0);
      const flrs = hw.resetCounts().flr;
      m.stub.forget(NVME);
      assert.deepEqual(m.forced, [{ address: '0000:00:02.0', domid: 5 }]);
      assert.equal(m.stub.get(NVME), undefined);
      assert.equal(m.interrupts.owners.find(NVME), undefined);
      assert.equal(hw.resetCounts().flr, flrs, 'not reset');
      assert.equal(hw.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1), 0x20, 'not restored');
      assert.ok(
        m.logger
          .at('warn')
          .some((r) => /left pciback outside pciback-ts while domain 5 used it/.test(r.msg ?? '')),
      );
      assert.throws(
        () => dev.config.read(0, 4),
        (e) => isPcibackError(e, 'CONFSPACE_RELEASED'),
      );
      m.stub.forget(NVME); // already gone: nothing happens
      assert.equal(m.forced.length, 1);
    });
  });

  test('unbinding a free device resets and restores it without the hook', () => {
    withMachine({ hide: '(00:14.0)' }, (m) => {
      const pms = m.hw('0000:00:14.0').resetCounts().pm;
      m.pci.unbind(XHCI);
      assert.equal(m.hw('0000:00:14.0').resetCounts().pm, pms + 1);
      assert.deepEqual(m.forced, []);
      assert.equal(m.stub.size, 0);
      assert.ok(!m.logger.at('warn').some((r) => r.msg?.startsWith('******') === true));
    });
  });

  test('a PF driver unbinding releases the idle VFs from the stub but not one in use', () => {
    const devices: TestMachineDevice[] = [{ bdf: '0000:03:00.0', model: 'nic-sriov' }];
    withMachine(
      { hide: '(03:10.*)' },
      (m) => {
        const pf = A('0000:03:00.0');
        assert.equal(m.pci.info(pf)?.driver, 'ixgbe');
        const vfs = m.enableVfs('0000:03:00.0', 2);
        assert.deepEqual(
          vfs.map((a) => a.toString()),
          ['0000:03:10.0', '0000:03:10.2'],
        );
        const [idle, used] = vfs as [PciAddress, PciAddress];
        assert.equal(m.pci.info(idle)?.driver, 'pciback');
        assert.equal(m.pci.info(used)?.driver, 'pciback');
        const vfDev: PcibackDevice = must(m.stub.claim(used, GUEST));
        assert.equal(vfDev.isVirtualFn, true);

        m.pci.unbind(pf);
        assert.equal(m.pci.info(pf)?.driver, null);
        assert.equal(m.pci.info(idle)?.driver, null, 'the idle VF left the stub');
        assert.equal(m.stub.get(idle), undefined);
        assert.equal(m.pci.info(used)?.driver, 'pciback', 'the VF in use stays');
        assert.equal(m.stub.userOf(used), GUEST);
        assert.deepEqual(m.forced, []);
        // Another function's driver unbinding does not touch VFs.
        m.stub.driverUnbinding(A('0000:03:10.2'));
        assert.equal(m.stub.userOf(used), GUEST);
      },
      devices,
    );
  });
});
