//! The wgpu device context: one adapter, device and queue, labelled buffers, shader and
//! pipeline creation inside error scopes, and the one read-back helper that maps and polls.
//!
//! Every wgpu call whose signature has moved between releases (adapter and device requests,
//! polling, error scopes, mapping) lives here, so the rest of the backend never sees them.

use std::sync::mpsc;

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};

/// Which kind of adapter a caller accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterChoice {
    /// Any adapter, software rasterizers (lavapipe, llvmpipe) included: the tests.
    Any,
    /// A hardware adapter only: `auto` on the command line.
    Hardware,
}

/// An open device.
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What the adapter says of itself.
    pub info: wgpu::AdapterInfo,
    /// The limits the device was opened with (the adapter's own).
    pub limits: wgpu::Limits,
}

impl GpuContext {
    /// Opens the first adapter that `choice` accepts (high-performance preferred).
    pub fn new(choice: AdapterChoice) -> Result<Self> {
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
        descriptor.backends = wgpu::Backends::PRIMARY;
        let instance = wgpu::Instance::new(descriptor);
        // Native APIs only: OpenGL adapters lack what the kernel needs and probing them is noisy.
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
        // Discrete before integrated before software; native APIs before OpenGL.
        let rank = |a: &wgpu::Adapter| {
            let info = a.get_info();
            let kind = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => 0,
                wgpu::DeviceType::IntegratedGpu => 1,
                wgpu::DeviceType::VirtualGpu => 2,
                wgpu::DeviceType::Other => 3,
                wgpu::DeviceType::Cpu => 4,
            };
            (kind, u8::from(info.backend == wgpu::Backend::Gl))
        };
        let computes = |a: &wgpu::Adapter| {
            a.get_downlevel_capabilities()
                .flags
                .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        };
        let software: Vec<String> = adapters
            .iter()
            .filter(|a| rank(a).0 >= 3 && computes(a))
            .map(|a| a.get_info().name)
            .collect();
        let adapter = adapters
            .into_iter()
            .filter(|a| choice == AdapterChoice::Any || rank(a).0 < 3)
            .filter(computes)
            .min_by_key(|a| rank(a))
            .ok_or_else(|| {
                Error::NoAdapter(if software.is_empty() {
                    "no GPU adapter found (to run the wgpu backend without a GPU, install a \
                     Vulkan driver such as Mesa's lavapipe)"
                        .into()
                } else {
                    format!(
                        "no hardware GPU adapter found (software only: {}; --backend wgpu runs \
                         on it)",
                        software.join(", ")
                    )
                })
            })?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("icq.device"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("opening {}: {e}", info.name)))?;
        Ok(Self {
            device,
            queue,
            info,
            limits,
        })
    }

    /// The adapter in words: name, backend, type, driver.
    pub fn describe(&self) -> String {
        let i = &self.info;
        format!(
            "{} ({:?}, {:?}, {} {})",
            i.name, i.backend, i.device_type, i.driver, i.driver_info
        )
        .replace("  ", " ")
    }

    /// Compiles WGSL `source` as the module `name`.
    pub fn shader(&self, name: &str, source: &str) -> Result<wgpu::ShaderModule> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(Error::Shader {
                name: name.to_string(),
                message: e.to_string(),
            }),
            None => Ok(module),
        }
    }

    /// A compute pipeline of `entry` in `module` with an inferred layout.
    pub fn pipeline(
        &self,
        name: &str,
        module: &wgpu::ShaderModule,
        entry: &str,
    ) -> Result<wgpu::ComputePipeline> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: None,
                module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(Error::Shader {
                name: name.to_string(),
                message: e.to_string(),
            }),
            None => Ok(pipeline),
        }
    }

    /// A storage buffer holding `data`, readable and writable by shaders and copyable both ways.
    pub fn storage<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let padded;
        let contents = if bytes.is_empty() {
            padded = [0u8; 4];
            &padded[..]
        } else {
            bytes
        };
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// A uniform buffer holding `value`.
    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// A bind group of `pipeline`'s group 0 with `buffers` at bindings 0, 1, ….
    pub fn bind(
        &self,
        label: &str,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &layout,
            entries: &entries,
        })
    }

    /// Records one dispatch of `groups` workgroups and submits it.
    pub fn dispatch(
        &self,
        label: &str,
        pipeline: &wgpu::ComputePipeline,
        bind: &wgpu::BindGroup,
        groups: u32,
    ) {
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: None,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bind, &[]);
            pass.dispatch_workgroups(groups, 1, 1);
        }
        self.queue.submit([encoder.finish()]);
    }

    /// Waits until every submitted command has finished.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))
    }

    /// Copies `buffer` back to the host as `T`s (the one place that maps and polls).
    pub fn read_back<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer) -> Result<Vec<T>> {
        let size = buffer.size();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("icq.readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("icq.readback"),
            });
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Gpu("the read-back callback never ran".into()))?
            .map_err(|e| Error::Gpu(format!("mapping a read-back buffer: {e}")))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("reading a mapped buffer: {e}")))?;
        let data = bytemuck::cast_slice::<u8, T>(&view).to_vec();
        drop(view);
        staging.unmap();
        Ok(data)
    }
}

/// Whether GPU tests must find an adapter (`ICQ_REQUIRE_ADAPTER=1`, set by CI) rather than
/// skip without one.
pub fn adapter_required() -> bool {
    std::env::var("ICQ_REQUIRE_ADAPTER").is_ok_and(|v| v == "1")
}
